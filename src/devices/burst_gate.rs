//! Keeps a keyboard-mode scanner's loyalty reads out of whatever program has focus (iikoFront,
//! usually), without knowing which keyboard a key came from. Pure: the Windows low-level keyboard
//! hook (`devices::llhook`) feeds it every physical key event and does what it says.
//!
//! Every key that could start a scan is held back, not passed on, while [`BurstClassifier`]
//! judges it. A person's typing is given back (re-injected, in the original order) as soon as it
//! is judged: within `max_gap_ms` (50 ms) of the key, which nobody notices. A burst that ends is
//! a scan; [`BurstGate`] then asks whether it is one of ours:
//! - a loyalty read that means nothing to another program (a signed guest or gift token, a
//!   magnetic stripe swipe) is swallowed and handed to the till only;
//! - anything else (a dish barcode scanned into iikoFront, a plain card number) is given back to
//!   the focused program unchanged, as if the till were not there.
//!
//! Keys are decoded through the US layout from their scan codes, as the scanner meant them,
//! whatever layout is active. Modifier shortcuts (Ctrl, Alt, Win) and keys that type nothing are
//! never held when nothing is pending, so the keyboard keeps working even if the till misjudges.

use super::keyboard::{UsKey, us_key};
use crate::wedge::{BurstClassifier, BurstConfig, Keystroke, WedgeKey, WedgeOutput};
use std::collections::VecDeque;

/// A key event as the low-level hook sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawKey {
    /// The virtual-key code, given back unchanged when re-injected.
    pub vk: u16,
    /// The PS/2 set-1 make code.
    pub scan_code: u16,
    /// The E0 prefix.
    pub extended: bool,
    pub down: bool,
    /// Milliseconds on the system's tick clock.
    pub time_ms: u64,
}

/// What the hook does with the key it was called for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Let it through now.
    Pass,
    /// Swallow it: it is held (and may be given back later) or was part of a scan.
    Hold,
}

/// What the hook must do besides.
#[derive(Clone, PartialEq, Eq)]
pub enum GateOutput {
    /// Give these keys back to the focused program, in this order.
    Reinject(Vec<RawKey>),
    /// A loyalty read for the till (never typed anywhere). Unmasked: never log it.
    Scan(String),
}

impl std::fmt::Debug for GateOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GateOutput::Reinject(keys) => write!(f, "Reinject(<{} keys>)", keys.len()),
            GateOutput::Scan(text) => write!(f, "Scan(<{} chars>)", text.chars().count()),
        }
    }
}

/// Which virtual keys are modifiers for shortcuts: never held when nothing is pending.
const VK_CONTROL_KEYS: [u16; 9] = [0x11, 0xA2, 0xA3, 0x12, 0xA4, 0xA5, 0x5B, 0x5C, 0x5D];

struct Held {
    key: RawKey,
    /// A key-down the classifier counted as a character or terminator.
    counts: bool,
}

pub struct BurstGate {
    classifier: BurstClassifier,
    held: VecDeque<Held>,
    /// Shift is down (for decoding; scanners press it for capitals and `%^?`).
    shift: bool,
    /// Ctrl, Alt and Win keys down, by virtual key: while any is, keys are shortcuts, not typing.
    modifiers_down: Vec<u16>,
    /// Scan codes of keys whose key-down went into a swallowed scan: their key-up is swallowed too.
    swallowed_downs: Vec<(u16, bool)>,
    /// What each key still down typed when it went down: its key-up reports the same character,
    /// whatever Shift did in between (a scanner often lets Shift go before the key).
    down_chars: Vec<((u16, bool), WedgeKey, char)>,
    /// Decides whether a finished burst is the till's, not the focused program's.
    is_ours: Box<dyn Fn(&str) -> bool + Send>,
}

impl BurstGate {
    pub fn new(config: BurstConfig, is_ours: Box<dyn Fn(&str) -> bool + Send>) -> BurstGate {
        BurstGate {
            classifier: BurstClassifier::new(config),
            held: VecDeque::new(),
            shift: false,
            modifiers_down: Vec::new(),
            swallowed_downs: Vec::new(),
            down_chars: Vec::new(),
            is_ours,
        }
    }

    /// Whether keys are held back: the caller must call [`tick`](Self::tick) soon.
    pub fn is_holding(&self) -> bool {
        !self.held.is_empty()
    }

    /// One physical key event (injected ones must not come here).
    pub fn key(&mut self, key: RawKey) -> (Verdict, Vec<GateOutput>) {
        // The keyboard's state follows every key, swallowed or not.
        if VK_CONTROL_KEYS.contains(&key.vk) {
            self.modifiers_down.retain(|&vk| vk != key.vk);
            if key.down {
                self.modifiers_down.push(key.vk);
            }
        }
        let decoded = us_key(key.scan_code, key.extended, self.shift);
        let is_shift = matches!(decoded, UsKey::LeftShift | UsKey::RightShift);
        if is_shift {
            self.shift = key.down;
        }
        if !key.down
            && let Some(i) = self
                .swallowed_downs
                .iter()
                .position(|&(code, ext)| code == key.scan_code && ext == key.extended)
        {
            self.swallowed_downs.swap_remove(i);
            return (Verdict::Hold, Vec::new());
        }
        let shortcut = !self.modifiers_down.is_empty();
        if is_shift {
            if key.down && !shortcut {
                // Held like a character: it may be the Shift of a scan's first `%`, and a Shift
                // passed on while its key-up is swallowed would stay down in the program.
                self.held.push_back(Held { key, counts: false });
                return (Verdict::Hold, Vec::new());
            }
            return self.hold_if_pending(key);
        }
        let id = (key.scan_code, key.extended);
        let wedge_key = match decoded {
            _ if shortcut || VK_CONTROL_KEYS.contains(&key.vk) => None,
            UsKey::Char(c) => Some((WedgeKey::Char, c)),
            UsKey::Enter => Some((WedgeKey::Enter, '\n')),
            UsKey::Tab => Some((WedgeKey::Tab, '\t')),
            UsKey::LeftShift | UsKey::RightShift | UsKey::Other => None,
        };
        let wedge_key = if key.down {
            if let Some((kind, ch)) = wedge_key {
                self.down_chars.retain(|(k, _, _)| *k != id);
                self.down_chars.push((id, kind, ch));
            }
            wedge_key
        } else {
            match self.down_chars.iter().position(|(k, _, _)| *k == id) {
                Some(i) => {
                    let (_, kind, ch) = self.down_chars.swap_remove(i);
                    Some((kind, ch))
                }
                None => wedge_key,
            }
        };
        let Some((wedge_key, ch)) = wedge_key else {
            // Types nothing: ends a burst (a key-down) and must come after what is held.
            if !key.down || self.held.is_empty() {
                return self.hold_if_pending(key);
            }
            let stroke = Keystroke {
                ch: None,
                key: WedgeKey::Other,
                at_ms: key.time_ms,
                down: true,
            };
            self.held.push_back(Held { key, counts: false });
            let outputs = self.classifier.push(stroke);
            return (Verdict::Hold, self.apply(outputs));
        };
        let stroke = Keystroke {
            ch: Some(ch),
            key: wedge_key,
            at_ms: key.time_ms,
            down: key.down,
        };
        if !key.down && self.held.is_empty() {
            // The key-up of a key already given back; the classifier still learns it is up.
            let outputs = self.classifier.push(stroke);
            let outputs = self.apply(outputs);
            return (Verdict::Pass, outputs);
        }
        self.held.push_back(Held { key, counts: key.down });
        let outputs = self.classifier.push(stroke);
        (Verdict::Hold, self.apply(outputs))
    }

    /// The time with no new key: gives back typing whose judgement is due, reports a burst ended
    /// by a pause.
    pub fn tick(&mut self, now_ms: u64) -> Vec<GateOutput> {
        let outputs = self.classifier.tick(now_ms);
        self.apply(outputs)
    }

    /// Holds a key that types nothing only behind keys already held, to keep the order.
    fn hold_if_pending(&mut self, key: RawKey) -> (Verdict, Vec<GateOutput>) {
        if self.held.is_empty() {
            (Verdict::Pass, Vec::new())
        } else {
            self.held.push_back(Held { key, counts: false });
            (Verdict::Hold, Vec::new())
        }
    }

    fn apply(&mut self, outputs: Vec<WedgeOutput>) -> Vec<GateOutput> {
        let mut out = Vec::new();
        for output in outputs {
            match output {
                WedgeOutput::Typed(text) => {
                    let keys = self.take(text.chars().count());
                    push_reinject(&mut out, keys);
                }
                WedgeOutput::Scan { text, terminated, .. } => {
                    let count = text.chars().count() + usize::from(terminated);
                    let keys = self.take(count);
                    if (self.is_ours)(&text) {
                        let unmatched_ups = self.swallow(&keys);
                        out.push(GateOutput::Scan(text));
                        // A key-up whose key-down went to the program before the burst (a Shift
                        // let out by a tick just before the `%`) must reach it, or the key would
                        // stay down there.
                        push_reinject(&mut out, unmatched_ups);
                    } else {
                        push_reinject(&mut out, keys);
                    }
                }
            }
        }
        if !self.classifier.is_holding() && !self.held.is_empty() {
            // Nothing is being judged: what is left (key-ups, Shift, a key that types nothing)
            // goes back now, after what went before it.
            let rest: Vec<RawKey> = self.held.drain(..).map(|h| h.key).collect();
            push_reinject(&mut out, rest);
        }
        out
    }

    /// Takes held keys from the front up to and including the `count`th counted key-down, and
    /// the key-ups and modifiers that follow it before the next counted key-down.
    fn take(&mut self, count: usize) -> Vec<RawKey> {
        let mut keys = Vec::new();
        let mut counted = 0;
        while counted < count {
            let Some(held) = self.held.pop_front() else { break };
            counted += usize::from(held.counts);
            keys.push(held.key);
        }
        while self.held.front().is_some_and(|h| !h.counts && !h.key.down) {
            if let Some(held) = self.held.pop_front() {
                keys.push(held.key);
            }
        }
        keys
    }

    /// A scan's keys never reach the focused program: the key-ups still to come are swallowed.
    /// Returns the key-ups among them whose key-down was not part of the scan.
    fn swallow(&mut self, keys: &[RawKey]) -> Vec<RawKey> {
        let mut unmatched_ups = Vec::new();
        let mut downs_in_scan: Vec<(u16, bool)> = Vec::new();
        for key in keys {
            let id = (key.scan_code, key.extended);
            if key.down {
                downs_in_scan.push(id);
            } else if let Some(i) = downs_in_scan.iter().position(|&k| k == id) {
                downs_in_scan.swap_remove(i);
            } else {
                unmatched_ups.push(*key);
            }
        }
        // Keys still down after the scan (Shift, a terminator): their key-ups are swallowed.
        self.swallowed_downs.extend(downs_in_scan);
        unmatched_ups
    }
}

fn push_reinject(out: &mut Vec<GateOutput>, keys: Vec<RawKey>) {
    if keys.is_empty() {
        return;
    }
    if let Some(GateOutput::Reinject(previous)) = out.last_mut() {
        previous.extend(keys);
    } else {
        out.push(GateOutput::Reinject(keys));
    }
}

/// The rule of the module documentation: a loyalty read that means nothing to another program.
pub fn is_loyalty_only(text: &str, config: &crate::scan::ScanParseConfig, now: crate::domain::UnixSeconds) -> bool {
    use crate::scan::payload::{Payload, PayloadError};
    use crate::scan::{ScanDetail, ScanError};
    match crate::scan::classify(text.as_bytes(), config, now) {
        Ok(parsed) => match parsed.detail {
            ScanDetail::Swipe(_) => true,
            ScanDetail::Payload(Payload::GuestToken { .. } | Payload::GiftToken { .. }) => true,
            ScanDetail::Payload(Payload::CardCode(_)) => false,
        },
        // A refused token (forged, expired, from a till without the key) or a failed swipe is
        // still ours to explain, never something for iikoFront's fields.
        Err(ScanError::Magstripe(_)) => true,
        Err(ScanError::Payload(PayloadError::UnknownFormat)) => false,
        Err(ScanError::Payload(_)) => true,
        Err(ScanError::TooLong { .. } | ScanError::NotUtf8 { .. } | ScanError::Empty) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// US scan codes of a text, with Shift around capitals and shifted symbols.
    fn strokes(text: &str, start_ms: u64, gap_ms: u64) -> Vec<RawKey> {
        let mut keys = Vec::new();
        let mut t = start_ms;
        for ch in text.chars() {
            let (code, shift) = code_of(ch);
            let mut press = |scan_code: u16, vk: u16, down: bool, t: u64| {
                keys.push(RawKey {
                    vk,
                    scan_code,
                    extended: false,
                    down,
                    time_ms: t,
                })
            };
            if shift {
                press(0x2A, 0xA0, true, t);
            }
            press(code, u16::from(ch as u8), true, t);
            press(code, u16::from(ch as u8), false, t + 1);
            if shift {
                press(0x2A, 0xA0, false, t + 1);
            }
            t += gap_ms;
        }
        keys
    }

    fn code_of(ch: char) -> (u16, bool) {
        for code in 0..0x60u16 {
            for shift in [false, true] {
                let key = us_key(code, false, shift);
                if key == UsKey::Char(ch) || (ch == '\n' && key == UsKey::Enter) {
                    return (code, shift);
                }
            }
        }
        panic!("no key for {ch:?}");
    }

    struct Run {
        passed: Vec<RawKey>,
        reinjected: Vec<RawKey>,
        scans: Vec<String>,
    }

    fn run(gate: &mut BurstGate, keys: &[RawKey], end_ms: u64) -> Run {
        let mut result = Run {
            passed: Vec::new(),
            reinjected: Vec::new(),
            scans: Vec::new(),
        };
        let collect = |outputs: Vec<GateOutput>, result: &mut Run| {
            for output in outputs {
                match output {
                    GateOutput::Reinject(keys) => result.reinjected.extend(keys),
                    GateOutput::Scan(text) => result.scans.push(text),
                }
            }
        };
        for key in keys {
            let (verdict, outputs) = gate.key(*key);
            collect(outputs, &mut result);
            if verdict == Verdict::Pass {
                // A passed key reaches the program now: after everything given back so far.
                result.reinjected.push(*key);
                result.passed.push(*key);
            }
        }
        collect(gate.tick(end_ms), &mut result);
        result
    }

    fn ours_if_starts_with_percent() -> BurstGate {
        BurstGate::new(BurstConfig::default(), Box::new(|text| text.starts_with('%')))
    }

    #[test]
    fn a_swipe_burst_is_swallowed_whole_and_goes_to_the_till() {
        let mut gate = ours_if_starts_with_percent();
        let keys = strokes("%B4111111111111111^DOE/J^2912?\n", 1_000, 4);
        let result = run(&mut gate, &keys, 5_000);
        assert_eq!(result.scans, ["%B4111111111111111^DOE/J^2912?"]);
        assert!(result.reinjected.is_empty(), "nothing reached the program");
        assert!(!gate.is_holding());
    }

    /// xdotool, and some scanners, let Shift go before the key it shifted.
    #[test]
    fn shift_released_before_its_key_still_makes_a_scan() {
        let mut gate = ours_if_starts_with_percent();
        let mut keys = strokes("%E?;7001000010?\n", 1_000, 3);
        // Move every Shift key-up before the key-up it follows.
        for i in 1..keys.len() {
            if keys[i].scan_code == 0x2A && !keys[i].down && !keys[i - 1].down {
                keys.swap(i - 1, i);
            }
        }
        let result = run(&mut gate, &keys, 5_000);
        assert_eq!(result.scans, ["%E?;7001000010?"]);
        assert!(result.reinjected.is_empty(), "{:?}", result.reinjected);
    }

    /// The hook's timer may fire between a scanner's Shift-down and its first `%`: that Shift goes
    /// to the program, and its key-up must follow it there even though the scan is swallowed.
    #[test]
    fn a_tick_between_shift_and_percent_leaves_no_shift_down() {
        let mut gate = ours_if_starts_with_percent();
        let keys = strokes("%B4111111111111111^DOE/J^2912?\n", 1_000, 4);
        let mut program = Vec::new();
        let mut scans = Vec::new();
        let mut collect = |outputs: Vec<GateOutput>, program: &mut Vec<RawKey>| {
            for output in outputs {
                match output {
                    GateOutput::Reinject(keys) => program.extend(keys),
                    GateOutput::Scan(text) => scans.push(text),
                }
            }
        };
        for (i, key) in keys.iter().enumerate() {
            let (verdict, outputs) = gate.key(*key);
            collect(outputs, &mut program);
            if verdict == Verdict::Pass {
                program.push(*key);
            }
            if i == 0 {
                collect(gate.tick(key.time_ms), &mut program);
            }
        }
        collect(gate.tick(5_000), &mut program);
        assert_eq!(scans.len(), 1);
        let shift_balance: i32 = program
            .iter()
            .filter(|k| k.scan_code == 0x2A)
            .map(|k| if k.down { 1 } else { -1 })
            .sum();
        assert_eq!(shift_balance, 0, "{program:?}");
    }

    /// A Shift let go after the scan's Enter is swallowed, and the gate must still know Shift is
    /// up: a dish barcode after it is not decoded shifted (and taken for a failed swipe).
    #[test]
    fn a_swallowed_shift_up_still_releases_shift() {
        let mut gate = ours_if_starts_with_percent();
        let mut keys = strokes("%B4111111111111111^DOE/J^2912?", 1_000, 4);
        let t = 1_120;
        let shift = |down, time_ms| RawKey {
            vk: 0xA0,
            scan_code: 0x2A,
            extended: false,
            down,
            time_ms,
        };
        let enter = |down, time_ms| RawKey {
            vk: 0x0D,
            scan_code: 0x1C,
            extended: false,
            down,
            time_ms,
        };
        keys.extend([
            shift(true, t),
            enter(true, t + 1),
            shift(false, t + 2),
            enter(false, t + 3),
        ]);
        let dish = strokes("5012345678900\n", 5_000, 4);
        keys.extend(dish.iter().copied());
        let result = run(&mut gate, &keys, 9_000);
        assert_eq!(result.scans, ["%B4111111111111111^DOE/J^2912?"]);
        assert_eq!(result.reinjected, dish, "the dish barcode reaches the program intact");
    }

    /// Ctrl and Alt down, Alt up: Ctrl is still down, so a letter is still a shortcut.
    #[test]
    fn each_modifier_is_tracked_on_its_own() {
        let mut gate = ours_if_starts_with_percent();
        let key = |vk, scan_code, down| RawKey {
            vk,
            scan_code,
            extended: false,
            down,
            time_ms: 10,
        };
        assert_eq!(gate.key(key(0xA2, 0x1D, true)).0, Verdict::Pass);
        assert_eq!(gate.key(key(0xA4, 0x38, true)).0, Verdict::Pass);
        assert_eq!(gate.key(key(0xA4, 0x38, false)).0, Verdict::Pass);
        assert_eq!(gate.key(key(0x43, 0x2E, true)).0, Verdict::Pass, "Ctrl+C");
        assert!(!gate.is_holding());
    }

    #[test]
    fn a_burst_that_is_not_ours_is_given_back_key_for_key() {
        let mut gate = ours_if_starts_with_percent();
        let keys = strokes("4607001234567\n", 1_000, 4);
        let result = run(&mut gate, &keys, 5_000);
        assert!(result.scans.is_empty());
        assert_eq!(result.reinjected, keys, "every key, in order");
    }

    #[test]
    fn a_person_typing_is_given_back_in_order_and_never_scanned() {
        let mut gate = ours_if_starts_with_percent();
        // Even typing that would be ours, typed by hand, is typing.
        let keys = strokes("%Hello World?\n", 1_000, 90);
        let result = run(&mut gate, &keys, 10_000);
        assert!(result.scans.is_empty());
        assert_eq!(result.reinjected, keys);
    }

    #[test]
    fn shortcuts_and_lone_keys_pass_at_once() {
        let mut gate = ours_if_starts_with_percent();
        let ctrl = RawKey {
            vk: 0xA2,
            scan_code: 0x1D,
            extended: false,
            down: true,
            time_ms: 0,
        };
        let c = RawKey {
            vk: 0x43,
            scan_code: 0x2E,
            extended: false,
            down: true,
            time_ms: 1,
        };
        assert_eq!(gate.key(ctrl).0, Verdict::Pass);
        assert_eq!(gate.key(c).0, Verdict::Pass, "Ctrl+C is a shortcut");
        assert_eq!(gate.key(RawKey { down: false, ..c }).0, Verdict::Pass);
        assert_eq!(gate.key(RawKey { down: false, ..ctrl }).0, Verdict::Pass);
        let arrow = RawKey {
            vk: 0x25,
            scan_code: 0x4B,
            extended: true,
            down: true,
            time_ms: 5,
        };
        assert_eq!(gate.key(arrow).0, Verdict::Pass);
        assert!(!gate.is_holding());
    }

    #[test]
    fn a_key_after_typing_keeps_its_place() {
        let mut gate = ours_if_starts_with_percent();
        let mut keys = strokes("ab", 1_000, 10);
        let backspace = RawKey {
            vk: 0x08,
            scan_code: 0x0E,
            extended: false,
            down: true,
            time_ms: 1_015,
        };
        keys.push(backspace);
        keys.push(RawKey {
            down: false,
            time_ms: 1_016,
            ..backspace
        });
        let result = run(&mut gate, &keys, 2_000);
        assert_eq!(result.reinjected, keys);
    }

    #[test]
    fn generated_typing_and_bursts_lose_nothing() {
        // Human words 60-400 ms apart mixed with fast bursts: every key comes out exactly once,
        // in order, except the swallowed bursts that are ours.
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for _ in 0..50 {
            let mut gate = ours_if_starts_with_percent();
            let mut keys = Vec::new();
            let mut expected_out = Vec::new();
            let mut expected_scans = Vec::new();
            let mut t = 10_000;
            for _ in 0..6 {
                if next(2) == 0 {
                    let word: String = (0..1 + next(8)).map(|_| char::from(b'a' + next(26) as u8)).collect();
                    for ch in word.chars() {
                        let k = strokes(&ch.to_string(), t, 0);
                        expected_out.extend(k.iter().copied());
                        keys.extend(k);
                        t += 60 + next(340);
                    }
                } else {
                    let ours = next(2) == 0;
                    let body: String = (0..8 + next(20)).map(|_| char::from(b'0' + next(10) as u8)).collect();
                    let text = if ours { format!("%B{body}?") } else { body };
                    let k = strokes(&format!("{text}\n"), t, next(20));
                    if ours {
                        expected_scans.push(text);
                    } else {
                        expected_out.extend(k.iter().copied());
                    }
                    t = k.last().map_or(t, |k| k.time_ms) + 300 + next(300);
                    keys.extend(k);
                }
            }
            let result = run(&mut gate, &keys, t + 1_000);
            assert_eq!(result.scans, expected_scans);
            assert_eq!(result.reinjected, expected_out);
            assert!(!gate.is_holding());
        }
    }
}
