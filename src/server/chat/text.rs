//! An encoded text frame's payload: UTF-8 bytes, reference counted, shared by every queue it goes to.
//!
//! Our own small type instead of axum's `ws::Utf8Bytes`, which would pull axum's `ws`
//! feature (and tungstenite) into the server build for one newtype. It is made only from
//! `String`s and `&'static str`s, so it is UTF-8 by construction.

use bytes::Bytes;

/// UTF-8 text in a [`Bytes`]: cloning it adds a reference, not a copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Utf8Bytes(Bytes);

/// Keeps `T` alive as the storage of a [`Utf8Bytes`].
struct Owned<T>(T);

impl<T: AsRef<str>> AsRef<[u8]> for Owned<T> {
    fn as_ref(&self) -> &[u8] {
        self.0.as_ref().as_bytes()
    }
}

impl Utf8Bytes {
    pub const fn from_static(s: &'static str) -> Self {
        Utf8Bytes(Bytes::from_static(s.as_bytes()))
    }

    /// The text `owner` holds, kept alive (and dropped) with the last copy: its `Drop` runs
    /// once every queue is done with the frame.
    pub fn from_owner<T: AsRef<str> + Send + 'static>(owner: T) -> Self {
        Utf8Bytes(Bytes::from_owner(Owned(owner)))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The text. Checks the bytes each time: for tests and logs, not the write path.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl From<String> for Utf8Bytes {
    fn from(s: String) -> Self {
        Utf8Bytes(Bytes::from(s))
    }
}

impl From<&'static str> for Utf8Bytes {
    fn from(s: &'static str) -> Self {
        Utf8Bytes::from_static(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn an_owner_lives_until_the_last_copy_is_dropped() {
        struct Counted(String, Arc<AtomicUsize>);
        impl AsRef<str> for Counted {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl Drop for Counted {
            fn drop(&mut self) {
                self.1.fetch_add(1, Ordering::SeqCst);
            }
        }
        let drops = Arc::new(AtomicUsize::new(0));
        let a = Utf8Bytes::from_owner(Counted("héllo".into(), drops.clone()));
        let b = a.clone();
        drop(a);
        assert_eq!(drops.load(Ordering::SeqCst), 0);
        assert_eq!(b.as_str(), "héllo");
        assert_eq!(b.len(), 6);
        drop(b);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    }
}
