//! What a fake provider was asked, in the order it was asked: each fake keeps one, its handlers
//! add to it and update their entry as the exchange goes on, and tests read it back.

use axum::http::HeaderMap;
use std::sync::Mutex;

/// The requests (or connections) a fake has seen, oldest first.
#[derive(Debug)]
pub struct RequestLog<T>(Mutex<Vec<T>>);

impl<T> Default for RequestLog<T> {
    fn default() -> Self {
        Self(Mutex::new(Vec::new()))
    }
}

impl<T: Clone> RequestLog<T> {
    /// Adds an entry; returns its id for [`RequestLog::update`].
    pub fn record(&self, entry: T) -> usize {
        let mut log = self.lock();
        log.push(entry);
        log.len() - 1
    }

    /// Changes entry `id` (a no-op for an id never recorded).
    pub fn update(&self, id: usize, f: impl FnOnce(&mut T)) {
        if let Some(entry) = self.lock().get_mut(id) {
            f(entry);
        }
    }

    /// Every entry so far, oldest first.
    pub fn snapshot(&self) -> Vec<T> {
        self.lock().clone()
    }

    /// A handler that panicked mid-update leaves the log as it was; the fake keeps serving.
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<T>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The request's headers as text pairs, for the log (values that are not UTF-8 lossily).
pub fn header_list(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}
