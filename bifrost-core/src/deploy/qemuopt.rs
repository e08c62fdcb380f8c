//! Values inside QEMU's comma-separated options (`-drive file=…,format=…`,
//! `-name guest=…`). QEMU's option parser (`qemu_opts_parse`, util/qemu-option.c)
//! ends a value at a single comma and reads `,,` as one literal comma, so a
//! path holding `,file=/other.img` would otherwise add an option of its own.
//! A value with no key is an "implied" option only while it holds no `=`;
//! bifrost therefore always names the key (`guest=`). A file name with a `:`
//! before its first `/` is read by the block layer as a protocol (`nbd:`,
//! `json:`…), so relative paths get a `./` in front.

use camino::Utf8Path;

/// `v` with every comma doubled, for use after `key=` in a QEMU option.
pub fn value(v: &str) -> String {
    v.replace(',', ",,")
}

/// A file name for `file=`: never read as a protocol, commas doubled.
pub fn path(p: &Utf8Path) -> String {
    if p.is_absolute() {
        value(p.as_str())
    } else {
        value(&format!("./{p}"))
    }
}

/// Split an option string the way QEMU does: `(key, value)` pairs, `,,`
/// read as a literal comma; a first item without `=` gets the key "".
pub fn parse(opts: &str) -> Vec<(String, String)> {
    let mut items = vec![];
    let mut cur = String::new();
    let mut chars = opts.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ',' {
            if chars.peek() == Some(&',') {
                chars.next();
                cur.push(',');
            } else {
                items.push(std::mem::take(&mut cur));
            }
        } else {
            cur.push(c);
        }
    }
    items.push(cur);
    items
        .into_iter()
        .map(|i| match i.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (String::new(), i),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commas_survive_a_round_trip() {
        for v in [
            "plain",
            "a,b",
            ",,",
            "x,file=/etc/shadow,format=raw",
            "end,",
        ] {
            let parsed = parse(&format!("file={},format=raw", value(v)));
            assert_eq!(
                parsed,
                vec![("file".into(), v.into()), ("format".into(), "raw".into())],
                "{v}"
            );
        }
    }

    #[test]
    fn relative_paths_are_never_protocols() {
        assert_eq!(path(Utf8Path::new("nbd:host:10809")), "./nbd:host:10809");
        assert_eq!(path(Utf8Path::new("/a,b/c")), "/a,,b/c");
    }
}
