//! Tells a keyboard-mode ("wedge") scanner or card reader from a person typing, for input devices
//! we cannot identify by themselves. Such devices type their data as very fast keystrokes that
//! usually end in Enter; inside our own window a scan must become an identify event while a
//! person's typing stays typing. Pure: keystrokes and the time come in as parameters; no I/O, no
//! clock, no logging.
//!
//! # The rule
//!
//! Only key-downs count: key-ups arrive in any order when a person presses the next key before
//! releasing the previous one, so their timing says nothing reliable. Consecutive character
//! key-downs whose gaps are all `<= max_gap_ms` form a *run*. A run is a scan when it is
//! `min_len..=max_len` characters long and is ended either by Enter or Tab within `max_gap_ms` of
//! its last character, or (unless `require_terminator`) by a pause of `>= end_gap_ms` with no
//! key-down at all. Anything else is released as typing, in the original order.
//!
//! We use the *largest* gap of a run rather than a median: a median would let one slow, human
//! keystroke join a fast burst and corrupt the scanned text. With the largest gap, one slow gap
//! splits the run, so a keystroke typed 300 ms before a burst is its own one-character run and is
//! released as typing, and the burst after it is judged on its own. The first character's gap is
//! unknown by nature; it does not matter because a run always starts after a slow (or no) gap.
//!
//! Two further signs make a run human at once, and its characters are then released immediately:
//! it grew beyond `max_len` (a stuck key, not a scan), or a key was pressed again within
//! `max_gap_ms` without being released (keyboard auto-repeat of a held key, which is as fast as a
//! scanner but never a scan).
//!
//! # Latency
//!
//! Characters are held back while they might still start a scan: at most `max_gap_ms` for short
//! runs, and up to `end_gap_ms` for a long fast run waiting for its pause. The caller calls
//! [`BurstClassifier::tick`] regularly (every frame) so held-back typing is released on time.
//!
//! # Limits
//!
//! A human keystroke within `max_gap_ms` of a burst joins it; nothing can tell them apart. A
//! key-down between `max_gap_ms` and `end_gap_ms` after an unterminated burst makes the burst
//! ambiguous and it is released as typing: a missed scan still leaves the digits in the field,
//! whereas a false scan would turn a person's typing into an identify event.

use crate::mask::mask_code;
use std::fmt;

/// The kind of key, as far as the classifier cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WedgeKey {
    /// A key that types `Keystroke::ch`.
    Char,
    /// Ends a scan; typed as `'\n'` when a person presses it.
    Enter,
    /// Ends a scan (some readers send it between or after fields); typed as `'\t'` by a person.
    Tab,
    /// Anything that types no text (arrows, Backspace, Escape, function keys).
    Other,
}

/// One key event. The caller reports key-ups with the same `key` and `ch` as their key-downs, so
/// that a held key can be recognised.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Keystroke {
    /// The character the key types; `None` for non-character keys.
    pub ch: Option<char>,
    pub key: WedgeKey,
    /// Milliseconds on any monotonic clock; only differences are used.
    pub at_ms: u64,
    /// `true` for key-down, `false` for key-up.
    pub down: bool,
}

/// The character is masked: keystrokes logged one by one would spell out a card number.
impl fmt::Debug for Keystroke {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keystroke")
            .field("ch", &self.ch.map(|_| '*'))
            .field("key", &self.key)
            .field("at_ms", &self.at_ms)
            .field("down", &self.down)
            .finish()
    }
}

/// Thresholds of the rule; see [`BurstConfig::default`] for the chosen values and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BurstConfig {
    /// Largest gap between two key-downs inside a burst.
    pub max_gap_ms: u64,
    /// Fewest characters a scan has.
    pub min_len: usize,
    /// Most characters a scan has; longer runs are a stuck key.
    pub max_len: usize,
    /// Whether a scan must end in Enter or Tab; if not, a pause may end it too.
    pub require_terminator: bool,
    /// Pause that ends a burst without a terminator; meant to be above `max_gap_ms`.
    pub end_gap_ms: u64,
}

impl Default for BurstConfig {
    /// - `max_gap_ms = 50`: wedge scanners and card readers send key-downs 0-50 ms apart (most
    ///   1-20 ms; 50 covers slow inter-character delay settings). Even fast typists (100 words a
    ///   minute is about 120 ms a key) go below 50 ms only for one or two rolled-over keys, not
    ///   for six or more in a row.
    /// - `min_len = 6`: our shortest codes have six characters, and six keys in a row is where
    ///   human rollover stops sustaining sub-50 ms gaps.
    /// - `max_len = 512`: three full magnetic tracks are under 250 characters and our QR codes
    ///   under 300, so a longer fast run is a stuck key or auto-repeat.
    /// - `require_terminator = false`: some readers are set up without an Enter suffix.
    /// - `end_gap_ms = 120`: more than twice `max_gap_ms`, so the device has surely finished,
    ///   yet short enough that the cashier does not notice the wait.
    fn default() -> Self {
        Self {
            max_gap_ms: 50,
            min_len: 6,
            max_len: 512,
            require_terminator: false,
            end_gap_ms: 120,
        }
    }
}

/// What the classifier releases. Concatenating the `Typed` texts and the scanned texts in order
/// gives every character typed, each once; a scan's terminator is not part of its text.
#[derive(Clone, PartialEq, Eq)]
pub enum WedgeOutput {
    /// A burst judged to come from a scanner or card reader.
    Scan {
        text: String,
        /// Key-down of the first character.
        started_ms: u64,
        /// Key-down of the terminator, or of the last character when a pause ended the burst.
        ended_ms: u64,
        /// Whether Enter or Tab ended the burst.
        terminated: bool,
    },
    /// Keystrokes judged human, released as typing in order; Enter and Tab appear as `'\n'` and
    /// `'\t'`.
    Typed(String),
}

/// Texts are masked so that an output can be logged with `?output`.
impl fmt::Debug for WedgeOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Scan {
                text,
                started_ms,
                ended_ms,
                terminated,
            } => f
                .debug_struct("Scan")
                .field("text", &mask_code(text))
                .field("started_ms", started_ms)
                .field("ended_ms", ended_ms)
                .field("terminated", terminated)
                .finish(),
            Self::Typed(text) => f.debug_tuple("Typed").field(&mask_code(text)).finish(),
        }
    }
}

/// Splits a stream of keystrokes into scans and typing. See the module documentation for the rule.
#[derive(Default)]
pub struct BurstClassifier {
    config: BurstConfig,
    run: Option<Run>,
    /// Keys pressed within the last `max_gap_ms` and not released since, to spot auto-repeat.
    held: Vec<HeldKey>,
}

/// Only the size of the held-back text is shown, never the text.
impl fmt::Debug for BurstClassifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BurstClassifier")
            .field("config", &self.config)
            .field("held_back_chars", &self.run.as_ref().map_or(0, |run| run.chars))
            .finish()
    }
}

/// Fast consecutive character key-downs not yet released.
struct Run {
    text: String,
    chars: usize,
    started_ms: u64,
    last_ms: u64,
    /// Known to be human (auto-repeat, or over `max_len`): its characters have been released and
    /// further ones are released as they come, until a slow gap ends the run.
    human: bool,
}

/// A key seen going down and not yet up. `ch` is kept for character keys only, because Enter and
/// Tab may report different characters on their key-down and key-up.
struct HeldKey {
    key: WedgeKey,
    ch: Option<char>,
    down_ms: u64,
}

/// What a key-down contributes to the text.
enum Input {
    Text(char),
    Terminator(char),
    NoText,
}

impl BurstClassifier {
    pub fn new(config: BurstConfig) -> Self {
        Self {
            config,
            run: None,
            held: Vec::new(),
        }
    }

    /// Feeds one key event (down or up). Returns what became certain by then, in order. Outputs
    /// come before the caller acts on a `WedgeKey::Other` key itself, so that, for instance, a
    /// Backspace applies to typing already released.
    pub fn push(&mut self, k: Keystroke) -> Vec<WedgeOutput> {
        let mut out = self.tick(k.at_ms);
        if !k.down {
            self.release(&k);
            return out;
        }
        let auto_repeat = self.press(&k);
        match input_of(&k) {
            Input::Text(c) => self.on_text(c, k.at_ms, auto_repeat, &mut out),
            Input::Terminator(c) => self.on_terminator(c, k.at_ms, &mut out),
            // A key that types nothing still interrupts the burst, and the typing before it
            // must be out before the caller applies the key.
            Input::NoText => self.close_as_typed(&mut out),
        }
        out
    }

    /// Whether characters are held back, waiting to be judged: the caller must come back with
    /// [`tick`](Self::tick) within `end_gap_ms`.
    pub fn is_holding(&self) -> bool {
        self.run.as_ref().is_some_and(|run| !run.text.is_empty())
    }

    /// When [`tick`](Self::tick) would next release something, if characters are held back: the
    /// caller must wake up by then, or held typing (and a burst ended by a pause) waits for the
    /// next event.
    pub fn deadline_ms(&self) -> Option<u64> {
        let run = self.run.as_ref().filter(|run| !run.text.is_empty())?;
        let waits_for_pause = self.is_scan_candidate(run) && !self.config.require_terminator;
        let gap = if waits_for_pause {
            self.config.end_gap_ms
        } else {
            self.config.max_gap_ms + 1
        };
        Some(run.last_ms + gap)
    }

    /// Tells the classifier the time with no new keystroke, so that held-back typing is released
    /// and a burst ended by a pause is reported. Calling it at any rate, or not at all, gives the
    /// same texts in the same order; only how they are split into outputs may differ.
    pub fn tick(&mut self, now_ms: u64) -> Vec<WedgeOutput> {
        let mut out = Vec::new();
        let Some(run) = &self.run else {
            return out;
        };
        let last_ms = run.last_ms;
        let gap = now_ms.saturating_sub(last_ms);
        if gap <= self.config.max_gap_ms {
            return out;
        }
        let waits_for_pause = self.is_scan_candidate(run) && !self.config.require_terminator;
        if !waits_for_pause {
            self.close_as_typed(&mut out);
        } else if gap >= self.config.end_gap_ms {
            self.close_as_scan(last_ms, false, &mut out);
        }
        out
    }

    fn on_text(&mut self, c: char, at_ms: u64, auto_repeat: bool, out: &mut Vec<WedgeOutput>) {
        // `tick` has already reported a run ended by its pause, so a run still open after a slow
        // gap was interrupted before its pause was complete: it is typing.
        if self.run.as_ref().is_some_and(|run| self.is_slow(run, at_ms)) {
            self.close_as_typed(out);
        }
        let run = self.run.get_or_insert_with(|| Run::starting_at(at_ms));
        run.last_ms = at_ms;
        if run.human {
            push_typed(out, c.encode_utf8(&mut [0; 4]));
            return;
        }
        run.text.push(c);
        run.chars += 1;
        if auto_repeat || run.chars > self.config.max_len {
            run.human = true;
            push_typed(out, &std::mem::take(&mut run.text));
        }
    }

    fn on_terminator(&mut self, c: char, at_ms: u64, out: &mut Vec<WedgeOutput>) {
        let ends_burst = self
            .run
            .as_ref()
            .is_some_and(|run| !self.is_slow(run, at_ms) && self.is_scan_candidate(run));
        if ends_burst {
            self.close_as_scan(at_ms, true, out);
        } else {
            self.close_as_typed(out);
            push_typed(out, c.encode_utf8(&mut [0; 4]));
        }
    }

    fn is_slow(&self, run: &Run, at_ms: u64) -> bool {
        at_ms.saturating_sub(run.last_ms) > self.config.max_gap_ms
    }

    /// Long enough to be a scan; a run over `max_len` is already marked human.
    fn is_scan_candidate(&self, run: &Run) -> bool {
        !run.human && run.chars >= self.config.min_len
    }

    fn close_as_typed(&mut self, out: &mut Vec<WedgeOutput>) {
        if let Some(run) = self.run.take() {
            push_typed(out, &run.text);
        }
    }

    fn close_as_scan(&mut self, ended_ms: u64, terminated: bool, out: &mut Vec<WedgeOutput>) {
        if let Some(run) = self.run.take() {
            out.push(WedgeOutput::Scan {
                text: run.text,
                started_ms: run.started_ms,
                ended_ms,
                terminated,
            });
        }
    }

    /// Records a key-down; returns whether it is an auto-repeat of a key still held.
    fn press(&mut self, k: &Keystroke) -> bool {
        let max_gap_ms = self.config.max_gap_ms;
        // Older presses cannot make a fast repeat any more; dropping them also forgets key-ups
        // that never arrived (focus lost while a key was down).
        self.held
            .retain(|held| k.at_ms.saturating_sub(held.down_ms) <= max_gap_ms);
        let (key, ch) = key_id(k);
        match self.held.iter_mut().find(|held| held.key == key && held.ch == ch) {
            Some(held) => {
                held.down_ms = k.at_ms;
                true
            }
            None => {
                self.held.push(HeldKey {
                    key,
                    ch,
                    down_ms: k.at_ms,
                });
                false
            }
        }
    }

    fn release(&mut self, k: &Keystroke) {
        let (key, ch) = key_id(k);
        self.held.retain(|held| !(held.key == key && held.ch == ch));
    }
}

impl Run {
    fn starting_at(at_ms: u64) -> Self {
        Self {
            text: String::new(),
            chars: 0,
            started_ms: at_ms,
            last_ms: at_ms,
            human: false,
        }
    }
}

fn key_id(k: &Keystroke) -> (WedgeKey, Option<char>) {
    match k.key {
        WedgeKey::Char => (k.key, k.ch),
        _ => (k.key, None),
    }
}

fn input_of(k: &Keystroke) -> Input {
    match (k.key, k.ch) {
        (WedgeKey::Char, Some(c)) => Input::Text(c),
        (WedgeKey::Enter, _) => Input::Terminator('\n'),
        (WedgeKey::Tab, _) => Input::Terminator('\t'),
        // A character key without a character has nothing to type.
        (WedgeKey::Char, None) | (WedgeKey::Other, _) => Input::NoText,
    }
}

/// Appends typing to the outputs, joining it to typing released just before.
fn push_typed(out: &mut Vec<WedgeOutput>, text: &str) {
    if text.is_empty() {
        return;
    }
    match out.last_mut() {
        Some(WedgeOutput::Typed(typed)) => typed.push_str(text),
        _ => out.push(WedgeOutput::Typed(text.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ch: char, at_ms: u64, down: bool) -> Keystroke {
        Keystroke {
            ch: Some(ch),
            key: WedgeKey::Char,
            at_ms,
            down,
        }
    }

    fn special(key: WedgeKey, at_ms: u64) -> Keystroke {
        Keystroke {
            ch: None,
            key,
            at_ms,
            down: true,
        }
    }

    /// Presses and releases each character `gap_ms` apart, starting at `start_ms`.
    fn type_text(c: &mut BurstClassifier, text: &str, start_ms: u64, gap_ms: u64) -> Vec<WedgeOutput> {
        let mut out = Vec::new();
        for (i, ch) in text.chars().enumerate() {
            let at = start_ms + i as u64 * gap_ms;
            out.extend(c.push(key(ch, at, true)));
            out.extend(c.push(key(ch, at + 1, false)));
        }
        out
    }

    fn typed(text: &str) -> WedgeOutput {
        WedgeOutput::Typed(text.to_string())
    }

    #[test]
    fn defaults_are_the_documented_thresholds() {
        let config = BurstConfig::default();
        assert_eq!(config.max_gap_ms, 50);
        assert_eq!(config.min_len, 6);
        assert_eq!(config.max_len, 512);
        assert!(!config.require_terminator);
        assert_eq!(config.end_gap_ms, 120);
    }

    #[test]
    fn terminated_burst_is_a_scan() {
        let mut c = BurstClassifier::default();
        let mut out = type_text(&mut c, "100001", 1_000, 10);
        out.extend(c.push(special(WedgeKey::Enter, 1_060)));
        let scan = WedgeOutput::Scan {
            text: "100001".to_string(),
            started_ms: 1_000,
            ended_ms: 1_060,
            terminated: true,
        };
        assert_eq!(out, vec![scan]);
    }

    #[test]
    fn held_key_auto_repeat_is_typing() {
        let mut c = BurstClassifier::default();
        let mut out = Vec::new();
        // Held down: one press, then auto-repeat every 33 ms with no key-up in between.
        for i in 0..20 {
            out.extend(c.push(key('0', 500 + i * 33, true)));
        }
        out.extend(c.push(key('0', 1_200, false)));
        out.extend(c.tick(5_000));
        assert!(out.iter().all(|o| matches!(o, WedgeOutput::Typed(_))), "{out:?}");
        let text: String = out
            .iter()
            .map(|o| match o {
                WedgeOutput::Typed(t) => t.as_str(),
                WedgeOutput::Scan { text, .. } => text.as_str(),
            })
            .collect();
        assert_eq!(text, "0".repeat(20));
    }

    #[test]
    fn non_text_key_releases_typing_before_it() {
        let mut c = BurstClassifier::default();
        let mut out = type_text(&mut c, "12", 0, 20);
        out.extend(c.push(special(WedgeKey::Other, 30)));
        assert_eq!(out, vec![typed("12")]);
    }

    #[test]
    fn require_terminator_turns_paused_burst_into_typing() {
        let config = BurstConfig {
            require_terminator: true,
            ..BurstConfig::default()
        };
        let mut c = BurstClassifier::new(config);
        let mut out = type_text(&mut c, "100001", 0, 10);
        out.extend(c.tick(1_000));
        assert_eq!(out, vec![typed("100001")]);
    }

    #[test]
    fn key_before_the_end_pause_makes_the_burst_typing() {
        let mut c = BurstClassifier::default();
        let mut out = type_text(&mut c, "100001", 0, 10);
        // 80 ms after the burst: too slow to continue it, too soon to have ended it.
        out.extend(type_text(&mut c, "x", 130, 10));
        out.extend(c.tick(1_000));
        assert_eq!(out, vec![typed("100001"), typed("x")]);
    }

    #[test]
    fn human_enter_is_typed_as_newline() {
        let mut c = BurstClassifier::default();
        let mut out = type_text(&mut c, "12", 0, 200);
        out.extend(c.push(special(WedgeKey::Enter, 500)));
        out.extend(c.push(special(WedgeKey::Tab, 800)));
        assert_eq!(out, vec![typed("1"), typed("2\n"), typed("\t")]);
    }

    #[test]
    fn debug_output_is_masked() {
        let scan = WedgeOutput::Scan {
            text: "4111111111111111".to_string(),
            started_ms: 0,
            ended_ms: 80,
            terminated: true,
        };
        let shown = format!("{scan:?} {:?} {:?}", typed("4111111111111111"), key('4', 0, true));
        assert!(!shown.contains("111111"), "{shown}");
        assert!(!shown.contains("'4'"), "{shown}");
    }
}
