//! How the host waits for the GPU. Every wait is written once, as a future: natively the
//! device is polled to completion inside it, so it is ready when first polled and the
//! blocking forms simply drive it ([`block`]); in a browser the device cannot be waited on,
//! the future yields to the page's event loop and resumes when WebGPU calls back.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll, Waker};

use crate::error::Result;

/// The sending half of a one-value channel filled by a GPU callback.
pub(crate) struct Sender<T>(Arc<Mutex<Slot<T>>>);

/// The receiving half: a future that resolves when the callback has run.
pub(crate) struct Receiver<T>(Arc<Mutex<Slot<T>>>);

struct Slot<T> {
    value: Option<T>,
    waker: Option<Waker>,
    sender_gone: bool,
}

/// A channel for one value sent from a GPU callback.
pub(crate) fn oneshot<T>() -> (Sender<T>, Receiver<T>) {
    let slot = Arc::new(Mutex::new(Slot { value: None, waker: None, sender_gone: false }));
    (Sender(slot.clone()), Receiver(slot))
}

impl<T> Sender<T> {
    /// Delivers the value and wakes the waiting task.
    pub(crate) fn send(self, value: T) {
        let waker = match self.0.lock() {
            Ok(mut s) => {
                s.value = Some(value);
                s.waker.take()
            }
            Err(_) => None,
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        // A callback dropped without sending (its device went away) must not leave the
        // receiver waiting for ever.
        let waker = match self.0.lock() {
            Ok(mut s) => {
                s.sender_gone = true;
                s.waker.take()
            }
            Err(_) => None,
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<T> Future for Receiver<T> {
    /// `None` when the callback was dropped without running.
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<T>> {
        let Ok(mut s) = self.0.lock() else {
            return Poll::Ready(None);
        };
        if let Some(v) = s.value.take() {
            return Poll::Ready(Some(v));
        }
        if s.sender_gone {
            return Poll::Ready(None);
        }
        s.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// Runs a GPU wait to its end on the calling thread. In a browser no thread may block, so
/// there this fails with [`Error::Blocking`] naming `what`, and the caller is told to use
/// the async form instead.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn block<T>(_what: &str, f: impl Future<Output = Result<T>>) -> Result<T> {
    pollster::block_on(f)
}

/// Runs a GPU wait to its end on the calling thread. In a browser no thread may block, so
/// there this fails with [`Error::Blocking`] naming `what`, and the caller is told to use
/// the async form instead.
#[cfg(target_arch = "wasm32")]
pub(crate) fn block<T>(what: &str, _f: impl Future<Output = Result<T>>) -> Result<T> {
    Err(crate::error::Error::Blocking { what: what.to_string() })
}
