//! UI components, shared by server rendering and the hydrated browser page.

pub mod attention;
pub mod avatar_picker;
pub mod chat_view;
pub mod composer;
pub mod join_form;
pub mod member_list;
pub mod mention_picker;
pub mod message_list;
pub mod message_text;
pub mod room_page;
pub mod server_status;
pub mod status;
pub mod time;

use futures::channel::mpsc::UnboundedSender;
use leptos::prelude::*;

use crate::protocol::ClientFrame;

/// Frames for the live connection; empty until the browser has opened one.
pub type Outgoing = StoredValue<Option<UnboundedSender<ClientFrame>>>;

/// True once the browser has hydrated the page: lets views switch from server-safe to browser-only rendering (e.g. local time).
#[derive(Clone, Copy)]
pub struct Hydrated(pub ReadSignal<bool>);
