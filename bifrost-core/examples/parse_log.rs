//! Benchmark helper (tests/bench/build.sh): feed an internal-json log to the
//! progress parser, rendering the state on each change as the UI would.

use std::io::BufRead;

fn main() {
    let path = std::env::args().nth(1).expect("usage: parse_log LOG");
    let f = std::io::BufReader::with_capacity(1 << 16, std::fs::File::open(path).expect("open"));
    let mut p = bifrost_core::build::Progress::new();
    let (mut lines, mut changes) = (0usize, 0usize);
    for line in f.split(b'\n') {
        let line = line.expect("read");
        lines += 1;
        let text = String::from_utf8_lossy(&line);
        if let Ok(true) = p.feed(&text, lines) {
            changes += 1;
            std::hint::black_box(p.render(std::time::Duration::ZERO));
        }
    }
    println!(
        "{lines} lines, {changes} changes, downloads {}/{}",
        p.downloads.done, p.downloads.expected
    );
}
