//! Keyboard-mode scanners the till cannot identify by device, typing into our own window: each
//! frame's keystrokes go through [`BurstClassifier`] before any widget sees them. A burst becomes
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
    /// Takes this frame's keystrokes out of the input, gives typing back (now or in a later
    /// frame) and returns the scans that ended. Call at the start of the frame, before widgets.
    pub fn filter(&mut self, ctx: &egui::Context) -> Vec<String> {
        let now_ms = self.started.elapsed().as_millis() as u64;
        let mut scans = Vec::new();
        ctx.input_mut(|input| {
            let events = std::mem::take(&mut input.events);
            let mut kept = Vec::with_capacity(events.len());
            release(self.classifier.tick(now_ms), &mut kept, &mut scans);
            for event in events {
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
            input.events = kept;
        });
        if self.classifier.is_holding() {
            // Held-back typing must come out even if no other event wakes the window.
            ctx.request_repaint_after(Duration::from_millis(30));
        }
        scans
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
                if modifiers.ctrl || modifiers.alt || modifiers.command || modifiers.mac_cmd {
                    return Judged::PassThrough;
                }
                let terminator = match key {
                    Key::Enter => WedgeKey::Enter,
                    Key::Tab => WedgeKey::Tab,
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
                        _ => {
                            pending.push(ch);
                            continue;
                        }
                    };
                    if !pending.is_empty() {
                        events.push(Event::Text(std::mem::take(&mut pending)));
                    }
                    for pressed in [true, false] {
                        events.push(Event::Key {
                            key,
                            physical_key: None,
                            pressed,
                            repeat: false,
                            modifiers: egui::Modifiers::NONE,
                        });
                    }
                }
                if !pending.is_empty() {
                    events.push(Event::Text(pending));
                }
            }
        }
    }
}
