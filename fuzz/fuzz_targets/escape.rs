//! `parse-scan` escapes (`\r \n \t \\ \xNN`): any UTF-8 line, never a panic, and what comes out
//! is consistent with the line it came from.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loyalty_till::scan::escape::{EscapeError, unescape_line};

fuzz_target!(|data: &[u8]| {
    // The command reads its lines as text; other bytes never reach the parser.
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    match unescape_line(line) {
        Ok(bytes) => {
            // Every escape is shorter than the byte it stands for, every other character
            // stays as its own bytes.
            assert!(bytes.len() <= line.len());
            if !line.contains('\\') {
                assert_eq!(bytes, line.as_bytes());
            }
            // Whatever the bytes, writing each one as \xNN gives them back.
            let escaped: String = bytes.iter().map(|b| format!("\\x{b:02x}")).collect();
            assert_eq!(unescape_line(&escaped).as_deref(), Ok(bytes.as_slice()));
        }
        // Each error points at the backslash it is about, so a technician can find it.
        Err(EscapeError::UnknownEscape { at, found }) => {
            assert_eq!(line.as_bytes()[at], b'\\');
            assert!(line[at + 1..].starts_with(found));
            assert!(!matches!(found, 'r' | 'n' | 't' | '\\' | 'x'));
        }
        Err(EscapeError::BadHex { at }) => {
            assert!(line[at..].starts_with("\\x"));
        }
        Err(EscapeError::TrailingBackslash) => {
            assert!(line.ends_with('\\'));
        }
    }
});
