//! Keyboard-mode devices: any stream of key events (make codes, E0 prefix, up and down, pauses)
//! through the US layout and the framer.
//!
//! Input: 2 header bytes (terminator, idle gap), then 3 bytes per key event: make code (low
//! byte), flags (bit 0 extended, bit 1 down, bit 2 a tick after the key, bit 3 slow pause, bits
//! 5-7 the make code's high bits), pause before it. Checked: never a panic, reads hold only what
//! a US keyboard types, and never more characters than were typed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loyalty_till::devices::framing::{FrameEvent, FramingConfig, Terminator};
use loyalty_till::devices::keyboard::{KeyboardReader, UsKey, us_key};
use loyalty_till_fuzz::Input;

const TERMINATORS: [Terminator; 5] = [
    Terminator::Cr,
    Terminator::Lf,
    Terminator::CrLf,
    Terminator::Etx,
    Terminator::IdleGap,
];

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let config = FramingConfig {
        terminator: TERMINATORS[usize::from(input.u8()) % TERMINATORS.len()],
        idle_gap_ms: u64::from(input.u8()) * 5,
        ..FramingConfig::default()
    };
    let mut reader = KeyboardReader::new(config.clone());
    let mut now = 0u64;
    let mut typed = 0usize;
    let mut out = 0usize;
    let mut events = Vec::new();
    while !input.is_empty() {
        let low = input.u8();
        let flags = input.u8();
        let pause = u64::from(input.u8());
        let make_code = u16::from(low) | (u16::from(flags >> 5) << 8);
        let extended = flags & 0x01 != 0;
        let down = flags & 0x02 != 0;
        now += if flags & 0x08 != 0 { pause * 100 } else { pause };

        // Whatever the key, the layout gives printable ASCII or a key that types nothing.
        for shift in [false, true] {
            if let UsKey::Char(c) = us_key(make_code, extended, shift) {
                assert!(c == ' ' || c.is_ascii_graphic());
            }
        }
        let types = down
            && matches!(
                us_key(make_code, extended, false),
                UsKey::Char(_) | UsKey::Enter | UsKey::Tab
            );
        typed += usize::from(types);

        events.extend(reader.key(make_code, extended, down, now));
        if flags & 0x04 != 0 {
            events.extend(reader.tick(now));
        }
    }
    events.extend(reader.tick(now.saturating_add(1_000_000)));

    for event in events {
        match event {
            FrameEvent::Frame(frame) => {
                // Printable ASCII and Tab; a CR only where it does not end a read.
                assert!(
                    frame
                        .iter()
                        .all(|&b| b == b' ' || b.is_ascii_graphic() || b == b'\t' || b == b'\r')
                );
                if config.terminator == Terminator::Cr {
                    assert!(!frame.contains(&b'\r'));
                }
                out += frame.len();
            }
            FrameEvent::Dropped { len, .. } => out += len,
        }
        assert!(out <= typed, "more bytes out than keys typed");
    }
});
