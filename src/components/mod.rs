//! UI components, shared by server rendering and the hydrated browser page.

pub mod attention;
pub mod avatar_picker;
pub mod byline;
pub mod chat_view;
pub mod composer;
pub mod join_form;
pub mod lang_switch;
pub mod member_list;
pub mod member_menu;
pub mod mention_picker;
pub mod message_item;
pub mod message_list;
pub mod message_menu;
pub mod message_text;
pub mod moderate_panel;
pub mod popup;
pub mod preview_list;
pub mod room_header;
pub mod room_notices;
pub mod room_page;
pub mod server_status;
pub mod status;
pub mod time;
pub mod typing_line;

use futures::channel::mpsc::UnboundedSender;
use leptos::prelude::*;

use crate::i18n::{tr, Lang, Text};
use crate::live_room::LiveRoom;
use crate::model::{ConnState, Parts};
use crate::protocol::moderation::ModRequestError;
use crate::protocol::{ClientFrame, ModRequest};

/// A view whose code is in a WASM chunk of its own (a `#[lazy]` function): the chunk is fetched
/// the first time the view is shown, and the view appears when it has come. A view the server
/// renders must have its chunk loaded before hydration ([`crate::hydrate`] sees to that).
pub fn lazy_view<F>(view: F) -> impl IntoView
where
    F: std::future::Future<Output = AnyView> + Send + 'static,
{
    Suspend::new(Untracked(Box::pin(view)))
}

/// Polls a lazy view's future untracked: the component it builds reads signals as it starts,
/// which must not make the `Suspend` build it again (as a component's body, it runs once).
struct Untracked(std::pin::Pin<Box<dyn std::future::Future<Output = AnyView> + Send>>);

impl std::future::Future for Untracked {
    type Output = AnyView;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<AnyView> {
        let view = &mut self.0;
        untrack(|| view.as_mut().poll(cx))
    }
}

/// Frames for the live connection; empty until the browser has opened one.
pub type Outgoing = StoredValue<Option<UnboundedSender<ClientFrame>>>;

/// True once the browser has hydrated the page: lets views switch from server-safe to browser-only rendering (e.g. local time).
#[derive(Clone, Copy)]
pub struct Hydrated(pub ReadSignal<bool>);

/// An avatar's name in `lang` (its image's alt text): the catalogue's `avatar-<id>`, else its English label.
pub fn avatar_name(lang: Lang, id: &str) -> String {
    let id = crate::avatars::shown_avatar(id);
    let key = format!("avatar-{id}");
    let name = tr(lang, &key, &[]);
    if name == key {
        crate::avatars::avatar_label(id)
    } else {
        name
    }
}

/// Sends a frame on the live connection (dropped while there is none).
pub fn send_frame(outgoing: Outgoing, frame: ClientFrame) {
    outgoing.with_value(|tx| {
        if let Some(tx) = tx {
            let _ = tx.unbounded_send(frame);
        }
    });
}

/// Sends the change `build` makes with a fresh client id, kept pending (and re-sent after a
/// reconnect) until the server confirms it.
pub fn send_change(model: LiveRoom, outgoing: Outgoing, build: impl FnOnce(String) -> ClientFrame) {
    let frame = build(new_client_id());
    let client_id = match &frame {
        ClientFrame::Edit { client_id, .. }
        | ClientFrame::Delete { client_id, .. }
        | ClientFrame::React { client_id, .. } => client_id.clone(),
        _ => return send_frame(outgoing, frame),
    };
    model.change(|m| m.add_pending_change(client_id, frame.clone()));
    send_frame(outgoing, frame);
}

/// Sends a moderator's request with a fresh client id (if it is well-formed); a refusal is
/// shown in the server's words.
pub fn send_moderation(model: LiveRoom, outgoing: Outgoing, request: ModRequest) {
    if let Err(e) = request.validate() {
        model.change(|m| {
            m.error = Some(mod_request_text(&e));
            Parts::ERROR
        });
        return;
    }
    send_noted(model, outgoing, |client_id| ClientFrame::Moderate {
        client_id,
        request,
    });
}

/// The words for a malformed moderation request.
fn mod_request_text(e: &ModRequestError) -> Text {
    use crate::protocol::moderation as limits;
    let (key, max) = match e {
        ModRequestError::Reason => ("mod-error-reason", limits::MAX_REASON_CHARS as i64),
        ModRequestError::Topic => ("mod-error-topic", limits::MAX_TOPIC_CHARS as i64),
        ModRequestError::Slow => ("mod-error-slow", i64::from(limits::MAX_SLOW_SECS)),
        ModRequestError::Minutes => ("mod-error-minutes", i64::from(limits::MAX_MINUTES)),
        ModRequestError::Clear => ("mod-error-clear", i64::from(limits::MAX_CLEAR_MINUTES)),
        ModRequestError::Name => return Text::new("mod-error-name"),
    };
    Text::new(key).arg("max", max)
}

/// Sends the frame `frame` makes with a fresh client id, noted so that a refusal of it is
/// shown in the server's words.
fn send_noted(model: LiveRoom, outgoing: Outgoing, frame: impl FnOnce(String) -> ClientFrame) {
    let client_id = new_client_id();
    model.change(|m| {
        m.standing.note_sent(client_id.clone());
        m.error = None;
        Parts::ERROR
    });
    send_frame(outgoing, frame(client_id));
}

/// Sends a claim link's token; the answer is a role change naming the reader, or an error.
pub fn send_claim(model: LiveRoom, outgoing: Outgoing, token: String) {
    // Frames wait for no welcome: until then the socket sends it itself, once welcomed.
    if model.with_untracked(|m| m.conn != ConnState::Online) {
        model.change(|m| {
            m.standing.claim = Some(token);
            Parts::NONE
        });
        return;
    }
    send_noted(model, outgoing, |client_id| ClientFrame::Claim {
        client_id,
        token,
    });
}

/// Is the reader one of the room's moderators (or its owner)? Redraws with their role.
pub fn is_moderator(model: LiveRoom) -> bool {
    model.with(Parts::STANDING, |m| m.standing.role.is_some())
}

/// A fresh id for a message or change made here.
pub fn new_client_id() -> String {
    #[cfg(feature = "hydrate")]
    {
        crate::client::new_client_id()
    }
    // Sending happens only in the browser; the server never renders a send.
    #[cfg(not(feature = "hydrate"))]
    {
        String::from("server")
    }
}

/// Milliseconds since the epoch (the browser's clock; 0 on the server, which never asks).
pub fn now_ms() -> f64 {
    #[cfg(feature = "hydrate")]
    {
        js_sys::Date::now()
    }
    #[cfg(not(feature = "hydrate"))]
    {
        0.0
    }
}
