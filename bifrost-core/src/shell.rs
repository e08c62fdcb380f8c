//! The one way bifrost writes a command line for humans (dry runs, plans,
//! logs): each word quoted so that a POSIX shell reads it back unchanged.

/// Characters a shell never treats specially inside a word. `#` starts a
/// comment only at the start of a word, so it is plain anywhere else.
fn plain(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c)
}

/// `word` as a POSIX shell reads it back: as is when nothing in it is
/// special, else in single quotes (a `'` inside becomes `'\''`).
pub fn quote(word: &str) -> String {
    let is_plain = word
        .char_indices()
        .all(|(i, c)| plain(c) || (c == '#' && i > 0));
    if !word.is_empty() && is_plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Words joined into one command line, each quoted with [`quote`].
pub fn line<'a>(words: impl IntoIterator<Item = &'a str>) -> String {
    words.into_iter().map(quote).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn plain_words_stay_bare_and_others_are_quoted() {
        assert_eq!(quote("subvol=@,compress=zstd"), "subvol=@,compress=zstd");
        assert_eq!(quote("a#b"), "a#b");
        assert_eq!(quote("#b"), "'#b'");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("~"), "'~'");
        assert_eq!(line(["echo", "a b", "c"]), "echo 'a b' c");
    }

    /// What `sh -c 'printf "%s\0" WORDS'` hands back, word by word.
    fn through_sh(words: &[String]) -> Vec<String> {
        let script = format!("printf '%s\\0' {}", line(words.iter().map(String::as_str)));
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .output()
            .expect("sh runs");
        assert!(out.status.success(), "{script}");
        let text = String::from_utf8(out.stdout).expect("utf-8 back");
        text.split_terminator('\0').map(str::to_string).collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn sh_reads_back_every_word(
            words in proptest::collection::vec("[^\0]{0,12}", 1..5)
        ) {
            prop_assert_eq!(through_sh(&words), words);
        }

        #[test]
        fn sh_reads_back_shell_syntax(
            words in proptest::collection::vec(r#"[#'"$`\\ ~*?!;&|<>(){}=a\n-]{0,8}"#, 1..5)
        ) {
            prop_assert_eq!(through_sh(&words), words);
        }
    }
}
