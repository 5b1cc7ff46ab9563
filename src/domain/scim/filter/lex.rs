//! The tokens of a filter or a PATCH path: parentheses, brackets, words (attribute paths,
//! operators, keywords, numbers) and JSON strings, decoded exactly as JSON defines them.

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    LParen,
    RParen,
    LBracket,
    RBracket,
    Word(String),
    Str(String),
}

pub(super) fn tokenize(input: &str) -> Result<Vec<Tok>, String> {
    let mut toks = Vec::new();
    let bytes = input.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'(' => {
                toks.push(Tok::LParen);
                i += 1;
            }
            b')' => {
                toks.push(Tok::RParen);
                i += 1;
            }
            b'[' => {
                toks.push(Tok::LBracket);
                i += 1;
            }
            b']' => {
                toks.push(Tok::RBracket);
                i += 1;
            }
            b'"' => {
                // Find the closing quote, skipping escaped characters; serde_json then decodes
                // the escapes exactly as JSON defines them (RFC 7644 §3.4.2.2 compValue).
                let start = i;
                i += 1;
                loop {
                    match bytes.get(i) {
                        None => {
                            return Err(format!(
                                "the string starting at character {start} is not closed"
                            ));
                        }
                        Some(b'\\') => i += 2,
                        Some(b'"') => break,
                        Some(_) => i += 1,
                    }
                }
                i += 1;
                let literal = input
                    .get(start..i)
                    .ok_or("a string is cut in the middle of a character")?;
                let s: String = serde_json::from_str(literal).map_err(|_| {
                    format!("the string starting at character {start} is not a valid JSON string")
                })?;
                toks.push(Tok::Str(s));
            }
            _ => {
                let start = i;
                while i < bytes.len()
                    && !matches!(
                        bytes[i],
                        b' ' | b'\t' | b'\r' | b'\n' | b'(' | b')' | b'[' | b']' | b'"'
                    )
                {
                    i += 1;
                }
                let word = input
                    .get(start..i)
                    .ok_or("a word is cut in the middle of a character")?;
                toks.push(Tok::Word(word.to_owned()));
            }
        }
    }
    Ok(toks)
}

/// How a token is named in an error message.
pub(super) fn describe(tok: Option<&Tok>) -> String {
    match tok {
        None => "end".into(),
        Some(Tok::LParen) => "\"(\"".into(),
        Some(Tok::RParen) => "\")\"".into(),
        Some(Tok::LBracket) => "\"[\"".into(),
        Some(Tok::RBracket) => "\"]\"".into(),
        Some(Tok::Word(w)) => format!("\"{}\"", w.chars().take(40).collect::<String>()),
        Some(Tok::Str(_)) => "a string".into(),
    }
}
