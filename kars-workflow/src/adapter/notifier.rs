//! The `Notifier` trait and the notification it posts.

use std::fmt;

/// Who a notification is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Audience {
    /// A channel, by its address in the chat system (`#kars-releases`).
    Channel(String),
    /// Everyone who holds a role (`devops`); the adapter decides how to reach them.
    Role(String),
}

impl fmt::Display for Audience {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Channel(c) => write!(f, "channel {c}"),
            Self::Role(r) => write!(f, "role {r}"),
        }
    }
}

/// A message to post.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Notification {
    /// The effect's idempotency key: the same key means the same notification.
    pub key: String,
    /// Who it is for.
    pub to: Audience,
    /// The rendered message.
    pub message: String,
}

/// Posts messages to channels and roles.
pub trait Notifier {
    /// Posts `notification`, or does nothing if its key was posted before and the adapter can
    /// tell.
    ///
    /// # Errors
    /// An [`AdapterError`](super::AdapterError): transient if a retry may succeed.
    fn notify(&self, notification: &Notification) -> Result<(), super::AdapterError>;
}

impl<N: Notifier + ?Sized> Notifier for &N {
    fn notify(&self, notification: &Notification) -> Result<(), super::AdapterError> {
        (**self).notify(notification)
    }
}

impl<N: Notifier + ?Sized> Notifier for Box<N> {
    fn notify(&self, notification: &Notification) -> Result<(), super::AdapterError> {
        (**self).notify(notification)
    }
}

impl<N: Notifier + ?Sized> Notifier for std::sync::Arc<N> {
    fn notify(&self, notification: &Notification) -> Result<(), super::AdapterError> {
        (**self).notify(notification)
    }
}
