//! Splitting a line into words the way iptables-restore does (`add_param_to_argv`).

use crate::error::{Error, Result};

/// iptables-restore's limit on one word.
const MAX_WORD: usize = 1023;

/// Splits at blanks outside double quotes. A closing quote ends the word, so `""` is an empty
/// word and `"a"b` two words. Inside quotes a backslash takes the next character literally;
/// outside, backslashes are ordinary.
pub fn split_words(line: &str) -> Result<Vec<String>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for c in line.chars() {
        if quoted {
            match c {
                _ if escaped => {
                    word.push(c);
                    escaped = false;
                }
                '\\' => escaped = true,
                '"' => {
                    quoted = false;
                    words.push(std::mem::take(&mut word));
                }
                _ => word.push(c),
            }
        } else {
            match c {
                '"' => quoted = true,
                ' ' | '\t' | '\n' => {
                    if !word.is_empty() {
                        words.push(std::mem::take(&mut word));
                    }
                }
                _ => word.push(c),
            }
        }
        if word.len() > MAX_WORD {
            return Err(Error::parameter("Parameter too long!"));
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(
            split_words(r#"-A INPUT  -i "a b" -j \x "q\"\\" "" end"#).unwrap(),
            ["-A", "INPUT", "-i", "a b", "-j", "\\x", "q\"\\", "", "end"]
        );
        assert_eq!(split_words("\t-S\n").unwrap(), ["-S"]);
        assert_eq!(split_words("x\"y z\"w").unwrap(), ["xy z", "w"]);
        assert!(split_words(&"a".repeat(2000)).is_err());
    }
}
