//! Log lines that cannot be forged. Values from outside (an IdP's `error_description`, a
//! header, a SCIM attribute) reach the log through `Display`; a line break inside one would
//! start what looks like a new, genuine log line, and an escape sequence could rewrite the
//! terminal it is read on. [`Escaping`] wraps the log's writer: every control character of a
//! formatted event (C0 and C1: CR, LF, ESC, ...) is written as an escape (`\r`, `\n`, `\t`,
//! `\u001b`, `\u0085`), except the newline that ends the event. The text format must run with
//! colours off (colours are escape sequences). The JSON format escapes C0 itself; the wrapper
//! also covers C1 there.

use std::io::{self, Write};

use tracing_subscriber::fmt::MakeWriter;

/// A [`MakeWriter`] whose writers escape control characters (see the module comment).
#[derive(Clone, Debug, Default)]
pub struct Escaping<M>(pub M);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for Escaping<M> {
    type Writer = EscapingWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        EscapingWriter(self.0.make_writer())
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        EscapingWriter(self.0.make_writer_for(meta))
    }
}

/// Writes one formatted event at a time (tracing-subscriber formats the whole event, then
/// writes it in one call), escaped.
pub struct EscapingWriter<W>(W);

impl<W: Write> Write for EscapingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write_all(escape(buf).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// `event` with every control character escaped but a final newline.
pub fn escape(event: &[u8]) -> String {
    let text = String::from_utf8_lossy(event);
    let (body, end) = match text.strip_suffix('\n') {
        Some(body) => (body, "\n"),
        None => (&*text, ""),
    };
    let mut out = String::with_capacity(text.len() + 8);
    for c in body.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // `\uXXXX`: readable in text, and a valid escape inside the JSON format's strings.
            // Unicode line and paragraph separators end lines for some readers too.
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push_str(end);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_inside_an_event_are_escaped_and_its_final_newline_kept() {
        assert_eq!(
            escape(b"WARN refused reason=x\r\nFAKE LINE\x1b[31m\n"),
            "WARN refused reason=x\\r\\nFAKE LINE\\u001b[31m\n"
        );
        assert_eq!(escape("a\u{85}b\tc".as_bytes()), "a\\u0085b\\tc");
        assert_eq!(escape("Zoë ✓\n".as_bytes()), "Zoë ✓\n");
    }
}
