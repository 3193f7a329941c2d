//! Keyboard-mode scanners the till cannot identify by device, typing into our own window: each
//! frame's raw keystrokes go through [`BurstClassifier`] before egui sees them (eframe's
//! `raw_input_hook`), so that neither a widget nor egui's own Tab focus handling acts on a scan. A burst becomes
//! a scan (the caller identifies the guest with it); a person's typing is given back to the
//! widgets unchanged, at most `end_gap_ms` later. So a scan reaches the workflow whichever field
//! has focus (the bonus amount, say) and never lands in that field.
//!
//! Events carry no time of their own, so every keystroke of a frame gets the frame's time: a
//! scanner's burst arrives within a frame or two (gaps of 0 to one frame), and a person's keys,
//! 60 ms or more apart, fall in separate frames.
//!
//! Characters are those of the active keyboard layout; a scanner typing through a Russian layout
//! is read correctly only by the Raw Input capture of configured devices (`devices::keyboard`).

use crate::wedge::{BurstClassifier, BurstConfig, Keystroke, WedgeKey, WedgeOutput};
use egui::{Event, Key};
use std::time::{Duration, Instant};

pub struct WedgeInput {
    classifier: BurstClassifier,
    /// The zero of the classifier's millisecond clock.
    started: Instant,
    /// The last key-down was the keyboard's auto-repeat: its character is reported as pressed
    /// again without a release, which the classifier takes for a held key, never a scan.
    repeating: bool,
}

impl Default for WedgeInput {
    fn default() -> Self {
        WedgeInput {
            classifier: BurstClassifier::new(BurstConfig::default()),
            started: Instant::now(),
            repeating: false,
        }
    }
}

impl WedgeInput {
    /// Takes this frame's keystrokes out of its raw events, gives typing back (now or in a later
    /// frame) and returns the scans that ended. Call before egui's pass begins.
    pub fn filter(&mut self, events: &mut Vec<Event>) -> Vec<String> {
        let now_ms = self.started.elapsed().as_millis() as u64;
        let mut scans = Vec::new();
        let mut kept = Vec::with_capacity(events.len());
        release(self.classifier.tick(now_ms), &mut kept, &mut scans);
        for event in std::mem::take(events) {
            match self.keystrokes_of(&event, now_ms) {
                Judged::Keys(keys) => {
                    for key in keys {
                        release(self.classifier.push(key), &mut kept, &mut scans);
                    }
                }
                Judged::Interrupts => {
                    let key = Keystroke {
                        ch: None,
                        key: WedgeKey::Other,
                        at_ms: now_ms,
                        down: true,
                    };
                    release(self.classifier.push(key), &mut kept, &mut scans);
                    kept.push(event);
                }
                Judged::PassThrough => kept.push(event),
            }
        }
        *events = kept;
        scans
    }

    /// How long until held-back typing (or a burst ended by a pause) must be released, if any
    /// is held. The window must run a frame by then even if no other event wakes it: ask for it
    /// during the frame's pass ([`egui::Context::request_repaint_after`] from `logic`), since a
    /// request made before the pass begins is forgotten when it begins.
    pub fn wake_after(&self) -> Option<Duration> {
        let deadline = self.classifier.deadline_ms()?;
        let now_ms = self.started.elapsed().as_millis() as u64;
        Some(Duration::from_millis(deadline.saturating_sub(now_ms)))
    }

    fn keystrokes_of(&mut self, event: &Event, at_ms: u64) -> Judged {
        match event {
            Event::Text(text) => {
                let mut keys = Vec::new();
                for ch in text.chars() {
                    keys.push(Keystroke {
                        ch: Some(ch),
                        key: WedgeKey::Char,
                        at_ms,
                        down: true,
                    });
                    if !self.repeating {
                        keys.push(Keystroke {
                            ch: Some(ch),
                            key: WedgeKey::Char,
                            at_ms,
                            down: false,
                        });
                    }
                }
                Judged::Keys(keys)
            }
            Event::Key {
                key,
                pressed,
                repeat,
                modifiers,
                ..
            } => {
                if *pressed {
                    self.repeating = *repeat;
                }
                if modifiers.ctrl
                    || modifiers.alt
                    || modifiers.command
                    || modifiers.mac_cmd
                    || modifiers.shift && *key == Key::Tab
                {
                    // A shortcut (Ctrl+V, Shift+Tab) acts on what was typed before it.
                    return if *pressed {
                        Judged::Interrupts
                    } else {
                        Judged::PassThrough
                    };
                }
                let terminator = match key {
                    Key::Enter => WedgeKey::Enter,
                    Key::Tab => WedgeKey::Tab,
                    // Space's own key event would click a focused button while its character is
                    // still being judged: it goes back with the character instead.
                    Key::Space => return Judged::Keys(Vec::new()),
                    _ if types_nothing(*key) => {
                        return if *pressed {
                            Judged::Interrupts
                        } else {
                            Judged::PassThrough
                        };
                    }
                    // The key of a character: its Text event is what counts.
                    _ => return Judged::PassThrough,
                };
                let ch = if terminator == WedgeKey::Enter { '\n' } else { '\t' };
                Judged::Keys(vec![Keystroke {
                    ch: Some(ch),
                    key: terminator,
                    at_ms,
                    down: *pressed,
                }])
            }
            // A tap or click acts on what was typed before it: «Найти гостя» pressed while the
            // last digit is still being judged searches the code with that digit.
            Event::PointerButton { pressed: true, .. }
            | Event::Touch {
                phase: egui::TouchPhase::Start,
                ..
            } => Judged::Interrupts,
            _ => Judged::PassThrough,
        }
    }
}

enum Judged {
    /// Keystrokes for the classifier; the event itself is held back.
    Keys(Vec<Keystroke>),
    /// A key that types nothing (Backspace, arrows): ends a burst, then goes to the widgets.
    Interrupts,
    /// Not typing (pointer, shortcuts with Ctrl, a character key's own Key event).
    PassThrough,
}

/// Keys that edit or move rather than type.
fn types_nothing(key: Key) -> bool {
    matches!(
        key,
        Key::Backspace
            | Key::Delete
            | Key::Escape
            | Key::ArrowLeft
            | Key::ArrowRight
            | Key::ArrowUp
            | Key::ArrowDown
            | Key::Home
            | Key::End
            | Key::PageUp
            | Key::PageDown
            | Key::Insert
    )
}

/// Typing goes back into the frame's events (Enter and Tab as key presses); scans are collected.
fn release(outputs: Vec<WedgeOutput>, events: &mut Vec<Event>, scans: &mut Vec<String>) {
    for output in outputs {
        match output {
            WedgeOutput::Scan { text, .. } => scans.push(text),
            WedgeOutput::Typed(text) => {
                let mut pending = String::new();
                for ch in text.chars() {
                    let key = match ch {
                        '\n' => Key::Enter,
                        '\t' => Key::Tab,
                        ' ' => Key::Space,
                        _ => {
                            pending.push(ch);
                            continue;
                        }
                    };
                    if !pending.is_empty() {
                        events.push(Event::Text(std::mem::take(&mut pending)));
                    }
                    events.push(key_event(key, true));
                    if key == Key::Space {
                        events.push(Event::Text(" ".to_string()));
                    }
                    events.push(key_event(key, false));
                }
                if !pending.is_empty() {
                    events.push(Event::Text(pending));
                }
            }
        }
    }
}

fn key_event(key: Key, pressed: bool) -> Event {
    Event::Key {
        key,
        physical_key: None,
        pressed,
        repeat: false,
        modifiers: egui::Modifiers::NONE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `frames` frames of `ui`, the raw events of frame `at` being `events`, filtered first
    /// as eframe's `raw_input_hook` does. Returns the scans.
    fn run(frames: usize, at: usize, events: &[Event], mut ui: impl FnMut(&mut egui::Ui, usize)) -> Vec<String> {
        let ctx = egui::Context::default();
        let mut wedge = WedgeInput::default();
        let mut scans = Vec::new();
        for frame in 0..frames {
            let mut raw = egui::RawInput::default();
            if frame == at {
                raw.events = events.to_vec();
            }
            scans.extend(wedge.filter(&mut raw.events));
            let mut output = ctx.run_ui(raw, |root| ui(root, frame));
            output.textures_delta.clear();
        }
        scans
    }

    /// A swipe whose name has a space, arriving while a button has focus: the space's key event
    /// must not click the button.
    #[test]
    fn a_scanned_space_clicks_no_button() {
        let mut events = Vec::new();
        for ch in "%B4111111111111111^DOE JOHN^2912?".chars() {
            if ch == ' ' {
                events.push(key_event(Key::Space, true));
            }
            events.push(Event::Text(ch.to_string()));
            if ch == ' ' {
                events.push(key_event(Key::Space, false));
            }
        }
        events.extend([key_event(Key::Enter, true), key_event(Key::Enter, false)]);
        let mut clicked = false;
        let scans = run(3, 1, &events, |ui, frame| {
            let button = ui.button("Начислить");
            if frame == 0 {
                button.request_focus();
            }
            clicked |= button.clicked();
        });
        assert_eq!(scans.len(), 1);
        assert!(!clicked, "the scan's space clicked the focused button");
    }

    /// A read ended by Tab is a scan, and focus stays where it was.
    #[test]
    fn a_tab_ended_scan_moves_no_focus() {
        let mut events: Vec<Event> = "100001".chars().map(|ch| Event::Text(ch.to_string())).collect();
        events.extend([key_event(Key::Tab, true), key_event(Key::Tab, false)]);
        let (mut a, mut b) = (String::new(), String::new());
        let mut a_focused = false;
        let scans = run(3, 1, &events, |ui, frame| {
            let field = ui.text_edit_singleline(&mut a);
            ui.text_edit_singleline(&mut b);
            if frame == 0 {
                field.request_focus();
            }
            a_focused = field.has_focus();
        });
        assert_eq!(scans, ["100001"]);
        assert!(a_focused, "focus left the field on a scan");
    }

    /// A person pressing Space on a focused button still clicks it, once judged.
    #[test]
    fn a_persons_space_still_clicks() {
        let events = [
            key_event(Key::Space, true),
            Event::Text(" ".into()),
            key_event(Key::Space, false),
        ];
        let mut clicks = 0;
        // The space is held for up to `max_gap_ms`, then given back with its key events.
        let ctx = egui::Context::default();
        let mut wedge = WedgeInput::default();
        for frame in 0..6 {
            let mut raw = egui::RawInput::default();
            if frame == 1 {
                raw.events = events.to_vec();
            }
            if frame == 3 {
                std::thread::sleep(Duration::from_millis(80));
            }
            let _ = wedge.filter(&mut raw.events);
            let mut output = ctx.run_ui(raw, |ui| {
                let button = ui.button("Начислить");
                if frame == 0 {
                    button.request_focus();
                }
                clicks += usize::from(button.clicked());
            });
            output.textures_delta.clear();
        }
        assert_eq!(clicks, 1);
    }
}
