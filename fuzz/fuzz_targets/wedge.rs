//! The wedge burst classifier: any keystroke stream (characters of any script, Enter, Tab, other
//! keys, key-ups in any order, pauses of any length) under any thresholds.
//!
//! Input: 5 header bytes (max gap, min length, max length, require terminator, end gap), then 3
//! bytes per keystroke: kind (bits 0-2 key kind, bit 3 key-up, bit 4 Enter/Tab carry a
//! character, bit 5 slow pause, bit 6 a tick after it), character, pause before it. Checked:
//! every character typed comes out exactly once and in order, scans respect the length limits,
//! and nothing is held back after a long pause.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loyalty_till::wedge::{BurstClassifier, BurstConfig, Keystroke, WedgeKey, WedgeOutput};
use loyalty_till_fuzz::{Input, assert_not_shown};

/// Stands for a terminator in the reconstructed text: Enter and Tab are typed as `\n` and `\t`
/// or end a scan, and either way they are counted once.
const TERMINATOR: char = '\u{1}';

/// Characters beyond ASCII, as a scanner set to another keyboard layout types them.
const WIDE: [char; 6] = ['Ж', 'ё', '€', 'ß', '😀', '\u{301}'];

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let min_len = usize::from(input.u8() % 32);
    let config = BurstConfig {
        max_gap_ms: u64::from(input.u8()),
        min_len,
        max_len: usize::from(input.u8()),
        require_terminator: input.u8() & 1 == 1,
        end_gap_ms: u64::from(input.u8()) * 2,
    };
    let mut classifier = BurstClassifier::new(config);
    let mut now = 1_000u64;
    let mut expected = String::new();
    let mut outputs = Vec::new();
    while !input.is_empty() {
        let kind = input.u8();
        let byte = input.u8();
        let pause = u64::from(input.u8());
        now += if kind & 0x20 != 0 { pause * 10 } else { pause };
        let ch = char_of(byte);
        let (key, ch) = match kind & 0x07 {
            0..=3 => (WedgeKey::Char, Some(ch)),
            4 => (WedgeKey::Enter, (kind & 0x10 != 0).then_some('\r')),
            5 => (WedgeKey::Tab, (kind & 0x10 != 0).then_some(ch)),
            6 => (WedgeKey::Other, None),
            _ => (WedgeKey::Char, None),
        };
        let down = kind & 0x08 == 0;
        if down {
            match (key, ch) {
                (WedgeKey::Char, Some(c)) => expected.push(c),
                (WedgeKey::Enter | WedgeKey::Tab, _) => expected.push(TERMINATOR),
                _ => {}
            }
        }
        outputs.extend(classifier.push(Keystroke {
            ch,
            key,
            at_ms: now,
            down,
        }));
        if kind & 0x40 != 0 {
            outputs.extend(classifier.tick(now));
        }
    }
    // After a pause longer than both gaps nothing may be held back.
    outputs.extend(classifier.tick(now + config.max_gap_ms.max(config.end_gap_ms) + 1));

    let mut actual = String::new();
    for output in &outputs {
        let shown = format!("{output:?}");
        match output {
            WedgeOutput::Typed(text) => {
                assert!(!text.is_empty());
                actual.extend(
                    text.chars()
                        .map(|c| if matches!(c, '\n' | '\t') { TERMINATOR } else { c }),
                );
                assert_not_shown(text, &shown);
            }
            WedgeOutput::Scan {
                text,
                started_ms,
                ended_ms,
                terminated,
            } => {
                let chars = text.chars().count();
                assert!(
                    chars >= config.min_len && chars <= config.max_len,
                    "a scan of {chars} characters"
                );
                assert!(started_ms <= ended_ms && *ended_ms <= now);
                actual.push_str(text);
                if *terminated {
                    actual.push(TERMINATOR);
                }
                assert_not_shown(text, &shown);
            }
        }
    }
    assert!(actual == expected, "characters lost, added or reordered");
});

/// A key's character: printable ASCII as it is, anything else one of a few wider characters.
/// Never `\n` or `\t`, which stand for Enter and Tab in the outputs.
fn char_of(byte: u8) -> char {
    match byte {
        0x20..=0x7E => char::from(byte),
        _ => WIDE[usize::from(byte) % WIDE.len()],
    }
}
