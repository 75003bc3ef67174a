# The chat's words in English (Fluent syntax: https://projectfluent.org/fluent/guide/).
# Every key here must also be in each other language's main.ftl (tests/locales.rs checks it).

raw = { $text }
app-title = Chat
room-title = #{ $room } · Chat
status-title = Status · Chat
language = Language
loading = Loading…
cancel = Cancel
go-to-lobby = Go to the lobby
not-found-heading = Page not found
not-found-text = Rooms live at { $path }.

## Connection and presence
conn-connecting = Connecting…
conn-online = Online
conn-reconnecting = Reconnecting…
conn-offline = Offline
online-count = { $count ->
    [one] { $count } person online
   *[other] { $count } people online
}
members-heading = Members
members-button = Members, { $count ->
    [one] { $count } person online
   *[other] { $count } people online
}
members-more = and { $count } more
leave-room = Leave room
room-label = Room
cannot-open-room = Cannot open this room
notice-reset = You missed many messages while away; showing the latest.
notice-joined = { $name } joined
notice-left = { $name } left
typing-one = { $name } is typing…
typing-two = { $first } and { $second } are typing…
typing-many = { $count ->
    [one] { $count } person is typing…
   *[other] { $count } people are typing…
}

## Joining
join-heading = Join the room
join-name = Display name
join-name-placeholder = Your name
join-avatar = Avatar
join-submit = Join
join-online-now = Online now
join-recent = Recent messages
join-could-not = Could not join: { $error }
join-name-length = Name must be 1–{ $max } characters
join-name-invisible = Name must not contain control or invisible characters
join-name-mixed-scripts = Name mixes alphabets that look alike (such as Latin with Cyrillic letters); use one
join-room-name = Room names are 1–{ $max } characters of a–z, 0–9 and -
join-pick-avatar = Pick one of the avatars
join-restarting = The server is restarting; try again in a moment
join-unavailable = The chat service cannot store messages right now; try again in a moment
join-name-taken = That name is already taken in this room
join-room-full = This room is full
join-too-many-joins = Too many joins from your address; try again in a minute
join-too-many-reservations = Your address holds too many names not yet in use; try again in a minute
join-too-many-new-rooms = Your address has opened too many new rooms; join an existing room or try again later
join-too-many-rooms = This server has as many rooms as it keeps; join an existing room
join-refused = This room did not let you in

## The composer
composer-label = Message
composer-label-edit = Edit message
composer-placeholder = Write a message… (Enter sends, Shift+Enter for a new line)
composer-send = Send
composer-save = Save
composer-editing = Editing message · Esc to cancel
composer-cancel-edit = Cancel editing
composer-replying = Replying to
composer-cancel-reply = Cancel reply
text-empty = Message is empty
text-too-long = Message is longer than { $max } characters
text-control = Message contains control characters
block-removed = You are no longer in this room
block-muted-forever = You are muted until a moderator unmutes you
block-muted-until = You are muted until { $time }
block-locked = This room is read-only
block-slow = You can send again in { $count } s

## Messages
message-removed = removed by a moderator
message-deleted = message deleted
more-actions = More actions
edited = (edited)
edited-at = Edited at { $time }
reply-to-deleted = Reply to a deleted message
reply-go-to = Go to the message by { $name }: { $text }
load-older = Load older messages
mentions-you = Mentions you
new-messages = New messages
menu-reply = Reply
menu-react = React
menu-edit = Edit
menu-delete = Delete
menu-remove = Remove
delete-question = Delete message?
delete-confirm = Delete this message? This cannot be undone.
remove-question = Remove message?
remove-confirm = Remove this message for everyone?
reason-optional = Reason (optional)
react-with = React with { $emoji }
any-emoji = Any one emoji
add = Add
enter-one-emoji = Enter one emoji

## Errors from the server
error-not-sent = Not sent: { $error }
error-not-changed = Not changed: { $error }
error-bad-request = The server did not understand that request
error-session-invalid = Your session has ended; join again
error-already-joined = Already joined
error-name-taken = That name is already taken in this room
error-room-full = This room is full
error-empty-message = Message is empty
error-message-too-long = Message is too long
error-invalid-text = Message contains control characters
error-storage-failed = The message could not be stored; try again
error-busy = The server is busy; try again shortly
error-rate-limited = Too many messages too fast; slow down
error-not-author = Only its author may change a message
error-no-such-message = That message is no longer here
error-invalid-emoji = A reaction must be one emoji
error-too-many-reactions = That message has as many reactions as it can keep
error-not-moderator = Only the room's moderators may do that
error-no-such-member = Nobody of that name is here
error-muted = You are muted in this room
error-locked = This room is read-only
error-slow-mode = Slow mode: wait a moment before sending again
error-banned = You are banned from this room
error-invalid-token = That link is not valid (used, expired, or for another name)

## Notifications
notify-off = Notify me of mentions
notify-on = Notifying you of mentions while this tab is in the background
notify-blocked = Notifications are blocked for this site in the browser's settings

## Moderation
operator-subject = An operator
operator-object = an operator
reason-suffix = : { $reason }
span-for = {" "}for { $duration }
span-until-unmuted = {" "}until unmuted
span-for-good = {" "}for good
duration-minutes = { $count ->
    [one] { $count } minute
   *[other] { $count } minutes
}
duration-hours = { $count ->
    [one] { $count } hour
   *[other] { $count } hours
}
duration-days = { $count ->
    [one] { $count } day
   *[other] { $count } days
}
interval-s = { $count } s
interval-min = { $count } min
full-stop = .
removed-banned = You are banned from this room{ $why }
removed-banned-until = You are banned from this room until { $time }{ $why }
removed-kicked = You were removed from the room by a moderator{ $why }
mod-remove = { $who } removed a message{ $why }
mod-clear = { $who } removed { $count ->
    [one] { $count } recent message
   *[other] { $count } recent messages
} by { $member }{ $why }
mod-mute = { $who } muted { $member }{ $span }{ $why }
mod-unmute = { $who } unmuted { $member }
mod-kick = { $member } was kicked by { $by }{ $why }
mod-ban = { $who } banned { $member }{ $span }{ $why }
mod-unban = { $who } unbanned { $member }
mod-topic-cleared = { $who } cleared the topic
mod-topic = { $who } set the topic: { $text }
mod-lock = { $who } locked the room
mod-unlock = { $who } unlocked the room
mod-slow-off = Slow mode is off
mod-slow = Slow mode: one message every { $interval }
mod-role-owner = { $member } is now the owner
mod-role-moderator = { $member } is now a moderator
mod-role-none = { $member } is no longer a moderator
audit-remove = removed a message
audit-clear = removed { $count ->
    [one] { $count } recent message
   *[other] { $count } recent messages
}
audit-mute = muted{ $span }
audit-unmute = unmuted
audit-kick = kicked
audit-ban = banned{ $span }{ $address }
audit-address = , and their address
audit-unban = unbanned
audit-topic-cleared = cleared the topic
audit-topic = set the topic: { $text }
audit-lock = locked the room
audit-unlock = unlocked the room
audit-slow-off = turned slow mode off
audit-slow = set slow mode to { $interval }
audit-role-owner = made owner
audit-role-moderator = made moderator
audit-role-none = removed as moderator
moderate = Moderate
moderate-room = Moderate the room
moderate-member = Moderate { $name }
topic = Topic
set-topic = Set topic
lock-room = Lock the room
unlock-room = Unlock the room
slow-mode = Slow mode
slow-mode-off = Off
slow-mode-badge = Slow mode: { $interval }
slow-mode-hint = Each member may post one message in this interval
read-only = 🔒 Read-only
read-only-hint = Only moderators can post in this room
unban = Unban
name = Name
audit-log = Audit log
audit-empty = Nothing yet.
audit-when = When
audit-who = Who
audit-what = What
audit-whom = Whom
audit-why = Why
audit-load-failed = The audit log could not be loaded
audit-forbidden = Only the room's moderators may read its audit log
audit-none = This server has no audit log
pane-mute = Mute
pane-unmute = Unmute
pane-kick = Kick
pane-ban = Ban
pane-clear = Clear messages
pane-title = { $verb } { $name }
item-mute = Mute…
item-kick = Kick…
item-ban = Ban…
item-clear = Clear recent messages…
until-unmuted = Until unmuted
forever = Forever
last-minutes = Last { $count } minutes
also-address = Also their address
rejoin = Rejoin
owner-link = You created this room. Keep this owner link:{" "}
claim-now = Claim now
dismiss-owner-link = Dismiss the owner link

## The status page
status-heading = Server status
status-stale = The server does not answer; showing the last figures.
status-none = No figures yet.
status-connections = Connections
status-rooms = Rooms
status-rooms-value = { $rooms } ({ $members ->
    [one] { $members } member
   *[other] { $members } members
})
status-messages = Messages per second
status-chart = { $title } over the last { $count } seconds, up to { $top }
uptime-s = { $s } s
uptime-min = { $min } min
uptime-h = { $h } h { $min } min
conversation = Conversation
join-nobody = Nobody yet: be the first.
go = Go
original-deleted = original message deleted
sending = Sending
for-how-long = For how long
message-actions = Message actions
pick-reaction = Pick a reaction
audit-caption = Moderation actions, newest first
status-meta = Version { $version } · up { $uptime }
you = You
sending-lower = sending…
reactions = Reactions
members-to-mention = Members to mention
avatar-fox = Fox
avatar-owl = Owl
avatar-cat = Cat
avatar-frog = Frog
avatar-bear = Bear
avatar-panda = Panda
avatar-robot = Robot
avatar-alien = Alien
avatar-ghost = Ghost
avatar-cactus = Cactus
avatar-octopus = Octopus
avatar-penguin = Penguin
avatar-tiger = Tiger
avatar-koala = Koala
avatar-unicorn = Unicorn
avatar-astronaut = Astronaut
mod-error-reason = A reason is at most { $max } characters
mod-error-topic = A topic is at most { $max } characters, on one line
mod-error-slow = Slow mode is 0 to { $max } seconds
mod-error-minutes = A duration is 1 to { $max } minutes, or none for no end
mod-error-clear = Clear reaches back 1 to { $max } minutes
mod-error-name = Name a member
meta-description = A live chat room: pick a name and an avatar, see who is online, and talk.
close-members = Close the member list
messages = Messages
