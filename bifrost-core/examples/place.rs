//! Benchmark helper (tests/bench/build.sh): place SRC into DIR/NAME the way
//! `bifrost build` does, and print the copy method.

use camino::Utf8PathBuf;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [src, dir, name] = args.as_slice() else {
        eprintln!("usage: place SRC DIR NAME");
        std::process::exit(2);
    };
    let placed = bifrost_core::build::place::place_file(
        &Utf8PathBuf::from(src),
        &Utf8PathBuf::from(dir),
        name,
        0,
    )
    .unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(1)
    });
    println!("{:?}", placed.method);
}
