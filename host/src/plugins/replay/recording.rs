//! Reading a recording: its lines, and the calls of one slot grouped the way they reached
//! plug-in instances (one group per session and instance, calls in file order).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;

use serde_json::Value;

use crate::plugins::record::Line;
use crate::plugins::settings::Slot;

/// A recorded call of any slot, its input and decision still raw JSON.
pub(crate) type RawLine = Line<Value, Value>;

/// The lines of a recording file.
pub(crate) struct Recording {
    pub lines: Vec<RawLine>,
    /// Lines that are not recorded calls (e.g. the half-written last line of a full disk).
    pub unreadable: u64,
}

impl Recording {
    /// Reads `path`.
    pub fn read(path: &Path) -> std::io::Result<Self> {
        let file = std::fs::File::open(path)?;
        let mut recording = Recording {
            lines: Vec::new(),
            unreadable: 0,
        };
        for line in BufReader::new(file).lines() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<RawLine>(&line) {
                Ok(parsed) => recording.lines.push(parsed),
                Err(_) => recording.unreadable += 1,
            }
        }
        Ok(recording)
    }

    /// The slots with calls in the recording, in [`Slot::ALL`] order.
    pub fn slots(&self) -> Vec<Slot> {
        Slot::ALL
            .into_iter()
            .filter(|s| self.lines.iter().any(|l| l.slot == *s))
            .collect()
    }

    /// The calls of `slot`, one group per (session, instance) in order of first appearance,
    /// each group's calls in file order.
    pub fn sessions(&self, slot: Slot) -> Vec<Vec<&RawLine>> {
        let mut index: HashMap<(&str, u64), usize> = HashMap::new();
        let mut groups: Vec<Vec<&RawLine>> = Vec::new();
        for line in self.lines.iter().filter(|l| l.slot == slot) {
            let key = (line.session.as_str(), line.instance);
            let at = *index.entry(key).or_insert_with(|| {
                groups.push(Vec::new());
                groups.len() - 1
            });
            groups[at].push(line);
        }
        groups
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(slot: &str, session: &str, instance: u64, turn: u32) -> String {
        format!(
            r#"{{"ts_ms":1,"slot":"{slot}","plugin":"p","version":"v","session":"{session}","instance":{instance},"turn":{turn},"duration_us":3,"outcome":"plugin","input":{{}},"decision":"wait"}}"#
        )
    }

    #[test]
    fn calls_are_grouped_by_session_and_instance_in_file_order() {
        let path =
            std::env::temp_dir().join(format!("voice-replay-read-{}.jsonl", std::process::id()));
        let text = [
            line("barge_in", "a", 1, 1),
            line("barge_in", "b", 2, 1),
            line("intent", "a", 3, 1),
            "{\"ts_ms\":1,\"slot\":\"barge_in\",\"plug".to_string(),
            line("barge_in", "a", 1, 2),
            line("barge_in", "a", 4, 3),
            String::new(),
        ]
        .join("\n");
        std::fs::write(&path, text).unwrap();
        let rec = Recording::read(&path).unwrap();
        assert_eq!(rec.unreadable, 1);
        assert_eq!(rec.slots(), [Slot::Intent, Slot::BargeIn]);
        let groups: Vec<Vec<(String, u64, u32)>> = rec
            .sessions(Slot::BargeIn)
            .into_iter()
            .map(|g| {
                g.into_iter()
                    .map(|l| (l.session.clone(), l.instance, l.turn))
                    .collect()
            })
            .collect();
        assert_eq!(
            groups,
            vec![
                vec![("a".to_string(), 1, 1), ("a".to_string(), 1, 2)],
                vec![("b".to_string(), 2, 1)],
                vec![("a".to_string(), 4, 3)],
            ]
        );
        std::fs::remove_file(&path).unwrap();
    }
}
