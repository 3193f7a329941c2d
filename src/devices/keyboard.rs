//! Keyboard-mode ("wedge") scanners and card readers read as a device of their own: their key
//! events arrive with the device they came from (Windows Raw Input, `rawinput`), are decoded
//! through the US layout, and are cut into reads by the same [`Framer`] as a serial device. Pure:
//! no I/O and no clock.
//!
//! The US layout is used whatever layout the cashier's Windows has active: the scanner types
//! physical keys as if on a US keyboard, so with a Russian or German layout the focused program
//! would see `%В…` or `;…ß`, while the key positions (scan codes) are what the device meant.

use super::framing::{FrameEvent, Framer, FramingConfig};
use super::hid::bus::HidRole;
use serde::{Deserialize, Serialize};

/// A keyboard-mode device to capture, from `config.toml`:
///
/// ```toml
/// [[keyboard_devices]]
/// name_contains = "VID_0C2E&PID_0B61"   # part of the Windows device path, or "*" for every keyboard
/// label = "Сканер у кассы"
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct KeyboardDeviceSettings {
    /// Matched, ignoring case, against the device path Windows reports
    /// (`\\?\HID#VID_0C2E&PID_0B61#…`). `"*"` takes every keyboard: for a till with no
    /// keyboard but the scanner, and for tests.
    pub name_contains: String,
    /// The name on the status line and in the log; `keyboard:<name_contains>` when empty.
    pub label: String,
    /// Scanners end a read with Enter; without it, a pause ends the read.
    pub framing: FramingConfig,
    /// Scanner or card reader, as chosen on the devices screen; `ignore` is not captured.
    pub role: HidRole,
}

/// A line without a role is read, as before roles existed: it was written to be read.
impl Default for KeyboardDeviceSettings {
    fn default() -> Self {
        KeyboardDeviceSettings {
            name_contains: String::new(),
            label: String::new(),
            framing: FramingConfig::default(),
            role: HidRole::Scanner,
        }
    }
}

impl KeyboardDeviceSettings {
    /// Whether a device with this system path is this configured device.
    pub fn matches(&self, device_path: &str) -> bool {
        let needle = self.name_contains.trim();
        if needle.is_empty() {
            return false;
        }
        needle == "*" || device_path.to_uppercase().contains(&needle.to_uppercase())
    }

    /// The source name of its reads and of its line on the status bar: the label, or the
    /// pattern when there is none (one name for the status and the reads, never a device path).
    pub fn source_name(&self) -> String {
        if self.label.trim().is_empty() {
            format!("keyboard:{}", self.name_contains.trim())
        } else {
            self.label.clone()
        }
    }
}

/// What a key does on a US keyboard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UsKey {
    Char(char),
    Enter,
    Tab,
    LeftShift,
    RightShift,
    /// Types nothing (Escape, arrows, function keys, Ctrl, Alt, Caps Lock…).
    Other,
}

/// Decodes a PS/2 set-1 make code (what Raw Input's `MakeCode` holds) on the US layout.
/// `extended` is the E0 prefix (`RI_KEY_E0`). Keypad digits count as digits: scanners in
/// "keypad emulation" mode type them, and they are meant as digits.
pub fn us_key(make_code: u16, extended: bool, shift: bool) -> UsKey {
    const ROW_DIGITS: &[u8; 10] = b"1234567890";
    const ROW_DIGITS_SHIFT: &[u8; 10] = b"!@#$%^&*()";
    const ROW_Q: &[u8; 10] = b"qwertyuiop";
    const ROW_A: &[u8; 9] = b"asdfghjkl";
    const ROW_Z: &[u8; 7] = b"zxcvbnm";
    let pick = |plain: char, shifted: char| UsKey::Char(if shift { shifted } else { plain });
    let letter = |c: u8| {
        let c = char::from(c);
        UsKey::Char(if shift { c.to_ascii_uppercase() } else { c })
    };
    if extended {
        return match make_code {
            0x1C => UsKey::Enter,     // keypad Enter
            0x35 => UsKey::Char('/'), // keypad /
            _ => UsKey::Other,        // arrows, right Ctrl/Alt, the "fake shift" E0 2A …
        };
    }
    let code = usize::from(make_code);
    match make_code {
        0x02..=0x0B => {
            let i = code - 0x02;
            UsKey::Char(char::from(if shift { ROW_DIGITS_SHIFT[i] } else { ROW_DIGITS[i] }))
        }
        0x0C => pick('-', '_'),
        0x0D => pick('=', '+'),
        0x0F => UsKey::Tab,
        0x10..=0x19 => letter(ROW_Q[code - 0x10]),
        0x1A => pick('[', '{'),
        0x1B => pick(']', '}'),
        0x1C => UsKey::Enter,
        0x1E..=0x26 => letter(ROW_A[code - 0x1E]),
        0x27 => pick(';', ':'),
        0x28 => pick('\'', '"'),
        0x29 => pick('`', '~'),
        0x2A => UsKey::LeftShift,
        0x2B => pick('\\', '|'),
        0x2C..=0x32 => letter(ROW_Z[code - 0x2C]),
        0x33 => pick(',', '<'),
        0x34 => pick('.', '>'),
        0x35 => pick('/', '?'),
        0x36 => UsKey::RightShift,
        0x37 => UsKey::Char('*'),
        0x39 => UsKey::Char(' '),
        0x47 => UsKey::Char('7'),
        0x48 => UsKey::Char('8'),
        0x49 => UsKey::Char('9'),
        0x4A => UsKey::Char('-'),
        0x4B => UsKey::Char('4'),
        0x4C => UsKey::Char('5'),
        0x4D => UsKey::Char('6'),
        0x4E => UsKey::Char('+'),
        0x4F => UsKey::Char('1'),
        0x50 => UsKey::Char('2'),
        0x51 => UsKey::Char('3'),
        0x52 => UsKey::Char('0'),
        0x53 => UsKey::Char('.'),
        _ => UsKey::Other,
    }
}

/// One keyboard-mode device: its own Shift state and framer, so two devices typing at once
/// cannot mix their reads.
#[derive(Clone, Debug)]
pub struct KeyboardReader {
    left_shift: bool,
    right_shift: bool,
    framer: Framer,
}

impl KeyboardReader {
    pub fn new(framing: FramingConfig) -> KeyboardReader {
        KeyboardReader {
            left_shift: false,
            right_shift: false,
            framer: Framer::new(framing),
        }
    }

    /// One key event of the device. Enter becomes the read's CR terminator.
    pub fn key(&mut self, make_code: u16, extended: bool, down: bool, now_ms: u64) -> Vec<FrameEvent> {
        match us_key(make_code, extended, self.left_shift || self.right_shift) {
            UsKey::LeftShift => self.left_shift = down,
            UsKey::RightShift => self.right_shift = down,
            UsKey::Char(c) if down => {
                let mut buf = [0u8; 4];
                return self.framer.push(c.encode_utf8(&mut buf).as_bytes(), now_ms);
            }
            UsKey::Enter if down => return self.framer.push(b"\r", now_ms),
            UsKey::Tab if down => return self.framer.push(b"\t", now_ms),
            UsKey::Char(_) | UsKey::Enter | UsKey::Tab | UsKey::Other => {}
        }
        Vec::new()
    }

    /// Fires the framer's idle timeouts; call it regularly.
    pub fn tick(&mut self, now_ms: u64) -> Vec<FrameEvent> {
        self.framer.tick(now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::framing::Terminator;

    /// Set-1 make codes a US keyboard sends for `text`, with Shift pressed around capitals and
    /// symbols: what a scanner in keyboard mode does.
    fn keystrokes(text: &str) -> Vec<(u16, bool)> {
        let mut out = Vec::new();
        for c in text.chars() {
            let (code, shift) = (0u16..0x60)
                .flat_map(|code| [(code, false), (code, true)])
                .find(|&(code, shift)| us_key(code, false, shift) == UsKey::Char(c))
                .unwrap_or_else(|| panic!("no key types {c:?}"));
            if shift {
                out.push((0x2A, true));
            }
            out.push((code, true));
            out.push((code, false));
            if shift {
                out.push((0x2A, false));
            }
        }
        out
    }

    fn read_all(reader: &mut KeyboardReader, keys: &[(u16, bool)]) -> Vec<FrameEvent> {
        let mut events = Vec::new();
        for (i, &(code, down)) in keys.iter().enumerate() {
            events.extend(reader.key(code, false, down, i as u64));
        }
        events
    }

    #[test]
    fn a_magnetic_stripe_decodes_through_the_us_layout() {
        let stripe = "%B4111111111111111^SMITH/JOHN^2512101?;4111111111111111=2512101?";
        let mut keys = keystrokes(stripe);
        keys.push((0x1C, true));
        keys.push((0x1C, false));
        let mut reader = KeyboardReader::new(FramingConfig::default());
        assert_eq!(
            read_all(&mut reader, &keys),
            vec![FrameEvent::Frame(stripe.as_bytes().to_vec())]
        );
    }

    #[test]
    fn the_make_codes_of_a_scan_are_the_us_positions() {
        // What Raw Input reported for `GMB42` typed by xdotool: G M B with Shift, 4 2, Enter.
        let mut reader = KeyboardReader::new(FramingConfig::default());
        let keys = [
            (0x2A, true),
            (0x22, true),
            (0x22, false),
            (0x32, true),
            (0x32, false),
            (0x30, true),
            (0x30, false),
            (0x2A, false),
            (0x05, true),
            (0x05, false),
            (0x03, true),
            (0x03, false),
            (0x1C, true),
        ];
        assert_eq!(read_all(&mut reader, &keys), vec![FrameEvent::Frame(b"GMB42".to_vec())]);
    }

    #[test]
    fn right_shift_and_the_keypad_count() {
        let mut reader = KeyboardReader::new(FramingConfig::default());
        let keys = [(0x36, true), (0x1E, true), (0x36, false), (0x4F, true), (0x52, true)];
        let mut events = read_all(&mut reader, &keys);
        events.extend(reader.key(0x1C, true, true, 10)); // keypad Enter
        assert_eq!(events, vec![FrameEvent::Frame(b"A10".to_vec())]);
    }

    #[test]
    fn the_fake_shift_and_other_keys_type_nothing() {
        assert_eq!(us_key(0x2A, true, false), UsKey::Other);
        assert_eq!(us_key(0x48, true, false), UsKey::Other); // arrow up, not keypad 8
        assert_eq!(us_key(0x3A, false, false), UsKey::Other); // Caps Lock
        assert_eq!(us_key(0x01, false, true), UsKey::Other); // Escape
    }

    #[test]
    fn without_enter_a_pause_ends_the_read() {
        let framing = FramingConfig {
            terminator: Terminator::IdleGap,
            idle_gap_ms: 100,
            ..FramingConfig::default()
        };
        let mut reader = KeyboardReader::new(framing);
        assert!(read_all(&mut reader, &keystrokes("100001")).is_empty());
        assert_eq!(reader.tick(500), vec![FrameEvent::Frame(b"100001".to_vec())]);
    }

    #[test]
    fn devices_match_by_part_of_their_path() {
        let settings = KeyboardDeviceSettings {
            name_contains: "vid_0c2e&pid_0b61".to_string(),
            ..KeyboardDeviceSettings::default()
        };
        assert!(settings.matches(r"\\?\HID#VID_0C2E&PID_0B61#7&1a2b#{884b96c3}"));
        assert!(!settings.matches(r"\\?\HID#VID_046D&PID_C31C#7&1a2b#{884b96c3}"));
        assert!(
            !KeyboardDeviceSettings::default().matches("anything"),
            "an empty pattern takes nothing"
        );
        let every = KeyboardDeviceSettings {
            name_contains: "*".to_string(),
            label: "Сканер".to_string(),
            ..KeyboardDeviceSettings::default()
        };
        assert!(every.matches("anything"));
        assert_eq!(every.source_name(), "Сканер");
        assert_eq!(settings.source_name(), "keyboard:vid_0c2e&pid_0b61");
    }
}
