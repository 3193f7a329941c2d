//! Escapes for the `parse-scan` diagnostics command, so that a technician can type the control
//! bytes a reader sends (`%B…?\r`, `\x03`) on one command line.

/// A bad escape, located by its byte offset in the line. Carries at most the one character
/// after the backslash, never the surrounding text, which may be card data.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EscapeError {
    #[error("The line ends with a lone backslash; write \\\\ for a backslash.")]
    TrailingBackslash,
    #[error("Unknown escape \\{found} at byte {at}; use \\r, \\n, \\t, \\\\ or \\xNN.")]
    UnknownEscape { at: usize, found: char },
    #[error("The escape at byte {at} needs two hex digits after \\x.")]
    BadHex { at: usize },
}

/// `\r`, `\n`, `\t`, `\\` and `\xNN` (two hex digits, any case) become their bytes; every other
/// character stays as its UTF-8 bytes.
pub fn unescape_line(line: &str) -> Result<Vec<u8>, EscapeError> {
    let mut out = Vec::with_capacity(line.len());
    let mut chars = line.char_indices();
    while let Some((at, c)) = chars.next() {
        if c != '\\' {
            let mut buf = [0; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        let (_, escaped) = chars.next().ok_or(EscapeError::TrailingBackslash)?;
        let byte = match escaped {
            'r' => b'\r',
            'n' => b'\n',
            't' => b'\t',
            '\\' => b'\\',
            'x' => hex_byte(&mut chars).ok_or(EscapeError::BadHex { at })?,
            found => return Err(EscapeError::UnknownEscape { at, found }),
        };
        out.push(byte);
    }
    Ok(out)
}

/// The two hex digits after `\x`.
fn hex_byte(chars: &mut impl Iterator<Item = (usize, char)>) -> Option<u8> {
    let high = chars.next()?.1.to_digit(16)?;
    let low = chars.next()?.1.to_digit(16)?;
    u8::try_from(high * 16 + low).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_kept_as_utf8() {
        assert_eq!(unescape_line("ab Ж").unwrap(), "ab Ж".as_bytes());
    }

    #[test]
    fn hex_escapes_take_both_cases() {
        assert_eq!(unescape_line(r"\x03\xfF\x0a").unwrap(), vec![0x03, 0xff, 0x0a]);
    }
}
