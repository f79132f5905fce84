//! Each rule of the page's chat state a user would notice, without a browser.
use super::*;
use crate::protocol::RelationChange;

const ME: &str = "me-id";
const ANN: &str = "ann-id";
const BOB: &str = "bob-id";

fn me() -> Me {
    Me {
        id: ME.into(),
        username: "me".into(),
        nickname: "Me".into(),
        avatar: String::new(),
    }
}

fn ann() -> Peer {
    Peer::User(ANN.into())
}

fn group() -> Peer {
    Peer::Group("g-1".into())
}

fn ready(last_id: i64, conversations: Vec<ConversationSummary>) -> Input {
    Input::Server {
        event: ServerEvent::Ready {
            version: 1,
            me: me(),
            conversations,
            presence: Vec::new(),
            last_id,
        },
        now: 0.0,
    }
}

fn server(event: ServerEvent) -> Input {
    Input::Server { event, now: 1000.0 }
}

fn text(s: &str) -> Content {
    Content::Text { text: s.into() }
}

fn view(id: i64, from: &str, to: Peer, client_id: &str, body: &str) -> MessageView {
    MessageView {
        id,
        client_id: client_id.into(),
        from: from.into(),
        to,
        content: text(body),
        created_at: id * 10,
    }
}

fn from_ann(id: i64) -> MessageView {
    view(id, ANN, Peer::User(ME.into()), &format!("a{id}"), "hi")
}

fn online() -> ChatState {
    let mut s = ChatState::new();
    s.apply(ready(0, Vec::new()));
    s
}

fn sent(fx: &[Effect]) -> Vec<ClientMessage> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Transmit(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

fn ids(s: &ChatState, peer: &Peer) -> Vec<Option<i64>> {
    s.conversations[peer]
        .messages
        .iter()
        .map(|m| m.id)
        .collect()
}

fn send(s: &mut ChatState, to: Peer, client_id: &str, body: &str) -> Vec<Effect> {
    s.apply(Input::Send {
        to,
        client_id: client_id.into(),
        content: text(body),
        now: 5.0,
    })
}

#[test]
fn an_ack_turns_sending_into_sent() {
    let mut s = online();
    let fx = send(&mut s, ann(), "c1", "hello");
    assert_eq!(sent(&fx).len(), 1, "sent at once while online");
    assert!(fx.contains(&Effect::Unsent(UnsentChange::Add(Unsent {
        to: ann(),
        client_id: "c1".into(),
        content: text("hello"),
        created_at: 5,
        failed: None,
    }))));
    assert_eq!(
        s.conversations[&ann()].messages[0].delivery,
        Delivery::Sending
    );
    let fx = s.apply(server(ServerEvent::Ack {
        client_id: "c1".into(),
        id: 7,
        created_at: 70,
    }));
    let m = &s.conversations[&ann()].messages[0];
    assert_eq!(
        (m.id, m.delivery, m.created_at),
        (Some(7), Delivery::Sent, 70)
    );
    assert!(s.outbox().is_empty());
    assert!(fx.contains(&Effect::Unsent(UnsentChange::Remove("c1".into()))));
    assert!(
        fx.contains(&Effect::Changed(Part::Message(ann(), "~c1".into()))),
        "one bubble redraws: {fx:?}"
    );
    assert_eq!(s.cursor(), Some(7));
}

#[test]
fn a_resent_client_id_shows_once() {
    let mut s = online();
    send(&mut s, ann(), "c1", "hello");
    // The socket drops before the ack; the reconnect sends it again.
    s.apply(Input::Disconnected { too_many: false });
    let fx = s.apply(ready(0, Vec::new()));
    assert!(
        sent(&fx)
            .iter()
            .any(|m| matches!(m, ClientMessage::Send { client_id, .. } if client_id == "c1"))
    );
    s.apply(server(ServerEvent::Ack {
        client_id: "c1".into(),
        id: 3,
        created_at: 30,
    }));
    // The same message also arrives through sync and live (another tab of mine).
    let mine = view(3, ME, ann(), "c1", "hello");
    s.apply(server(ServerEvent::Message(mine.clone())));
    s.apply(server(ServerEvent::Synced {
        messages: vec![mine],
        more: false,
        cursor: 3,
    }));
    assert_eq!(ids(&s, &ann()), vec![Some(3)]);
    assert_eq!(
        s.conversations[&ann()].unread,
        0,
        "my own message is not unread"
    );
}

#[test]
fn sync_pages_join_without_gaps_or_duplicates() {
    let mut s = ChatState::new();
    s.apply(Input::Open(Some(ann())));
    s.apply(Input::LoadHistory(ann()));
    let fx = s.apply(ready(10, Vec::new()));
    assert!(
        sent(&fx).contains(&ClientMessage::Sync { after: 10 }),
        "the first sync starts at ready's last_id"
    );
    s.apply(server(ServerEvent::History {
        with: ann(),
        messages: vec![from_ann(9), from_ann(10)],
        more: false,
    }));
    // Page one: 11 and 12, more to come: the next sync goes from the page's cursor.
    let fx = s.apply(server(ServerEvent::Synced {
        messages: vec![from_ann(11), from_ann(12)],
        more: true,
        cursor: 12,
    }));
    assert!(sent(&fx).contains(&ClientMessage::Sync { after: 12 }));
    // A live message overtakes page two, which repeats it.
    s.apply(server(ServerEvent::Message(from_ann(14))));
    s.apply(server(ServerEvent::Synced {
        messages: vec![from_ann(13), from_ann(14)],
        more: false,
        cursor: 14,
    }));
    assert_eq!(
        ids(&s, &ann()),
        vec![Some(9), Some(10), Some(11), Some(12), Some(13), Some(14)]
    );
    // A reconnect syncs from the highest id seen, not from the old snapshot.
    s.apply(Input::Disconnected { too_many: false });
    let fx = s.apply(ready(99, Vec::new()));
    assert!(sent(&fx).contains(&ClientMessage::Sync { after: 14 }));
}

#[test]
fn history_pages_merge_in_order() {
    let mut s = online();
    s.apply(Input::LoadHistory(ann()));
    assert!(s.conversations[&ann()].loading_history);
    // Asking again while a page is on its way sends nothing.
    assert!(sent(&s.apply(Input::LoadHistory(ann()))).is_empty());
    s.apply(server(ServerEvent::History {
        with: ann(),
        messages: vec![from_ann(20), from_ann(21)],
        more: true,
    }));
    let fx = s.apply(Input::LoadHistory(ann()));
    assert_eq!(
        sent(&fx),
        vec![ClientMessage::History {
            with: ann(),
            before: Some(20),
            limit: Some(40)
        }]
    );
    let fx = s.apply(server(ServerEvent::History {
        with: ann(),
        messages: vec![from_ann(18), from_ann(19)],
        more: false,
    }));
    assert!(fx.contains(&Effect::Changed(Part::Messages(ann()))));
    assert_eq!(
        ids(&s, &ann()),
        vec![Some(18), Some(19), Some(20), Some(21)]
    );
    assert!(
        sent(&s.apply(Input::LoadHistory(ann()))).is_empty(),
        "nothing older"
    );
}

#[test]
fn a_receipt_never_moves_back_and_turns_only_new_messages_read() {
    let mut s = online();
    for (cid, id) in [("c1", 1), ("c2", 2), ("c3", 3)] {
        send(&mut s, ann(), cid, "x");
        s.apply(server(ServerEvent::Ack {
            client_id: cid.into(),
            id,
            created_at: id,
        }));
    }
    let receipt = |up_to| {
        server(ServerEvent::Receipt {
            conversation: ann(),
            reader: ANN.into(),
            up_to,
        })
    };
    let fx = s.apply(receipt(2));
    let redrawn: Vec<_> = fx
        .iter()
        .filter(|e| matches!(e, Effect::Changed(Part::Message(..))))
        .collect();
    assert_eq!(redrawn.len(), 2, "messages 1 and 2 turn read: {fx:?}");
    assert_eq!(s.conversations[&ann()].peer_read_up_to, 2);
    let fx = s.apply(receipt(1));
    assert_eq!(s.conversations[&ann()].peer_read_up_to, 2, "never back");
    assert!(
        !fx.iter()
            .any(|e| matches!(e, Effect::Changed(Part::Message(..))))
    );
}

#[test]
fn unread_counts_and_reads_follow_what_is_on_screen() {
    let mut s = online();
    s.apply(server(ServerEvent::Message(from_ann(1))));
    s.apply(server(ServerEvent::Message(from_ann(2))));
    // The same message again (sync after a live one) counts once.
    s.apply(server(ServerEvent::Synced {
        messages: vec![from_ann(2)],
        more: false,
        cursor: 2,
    }));
    assert_eq!(s.conversations[&ann()].unread, 2);
    assert_eq!(s.total_unread(), 2);
    // Opening it reads it.
    let fx = s.apply(Input::Open(Some(ann())));
    assert_eq!(
        sent(&fx),
        vec![ClientMessage::Read {
            conversation: ann(),
            up_to: 2
        }]
    );
    assert_eq!(s.conversations[&ann()].unread, 0);
    // While on screen and visible, a new message is read at once.
    let fx = s.apply(server(ServerEvent::Message(from_ann(3))));
    assert!(sent(&fx).contains(&ClientMessage::Read {
        conversation: ann(),
        up_to: 3
    }));
    assert_eq!(s.conversations[&ann()].unread, 0);
    // A hidden page counts it, notifies, and reads nothing until it is visible again.
    s.apply(Input::Visible(false));
    let fx = s.apply(server(ServerEvent::Message(from_ann(4))));
    assert!(sent(&fx).is_empty());
    assert!(fx.iter().any(|e| matches!(e, Effect::Notify { .. })));
    assert_eq!(s.conversations[&ann()].unread, 1);
    let fx = s.apply(Input::Visible(true));
    assert!(sent(&fx).contains(&ClientMessage::Read {
        conversation: ann(),
        up_to: 4
    }));
    // The reader's other tab read further: the count follows.
    s.apply(Input::Open(None));
    s.apply(server(ServerEvent::Message(from_ann(5))));
    s.apply(server(ServerEvent::Receipt {
        conversation: ann(),
        reader: ME.into(),
        up_to: 5,
    }));
    assert_eq!(s.conversations[&ann()].unread, 0);
}

#[test]
fn a_refused_message_waits_for_a_tap_or_goes() {
    let mut s = online();
    send(&mut s, ann(), "c1", "hi");
    let fx = s.apply(server(ServerEvent::Error {
        code: ErrorCode::NotFriends,
        message: "no".into(),
        client_id: Some("c1".into()),
    }));
    assert!(fx.contains(&Effect::Unsent(UnsentChange::Mark(
        "c1".into(),
        Some(ErrorCode::NotFriends)
    ))));
    assert_eq!(
        s.conversations[&ann()].messages[0].delivery,
        Delivery::Failed(ErrorCode::NotFriends)
    );
    assert!(s.outbox().is_empty(), "not sent again by itself");
    let fx = s.apply(Input::Retry {
        to: ann(),
        client_id: "c1".into(),
    });
    assert_eq!(sent(&fx).len(), 1);
    assert_eq!(
        s.conversations[&ann()].messages[0].delivery,
        Delivery::Sending
    );
    s.apply(server(ServerEvent::Error {
        code: ErrorCode::NotFriends,
        message: "no".into(),
        client_id: Some("c1".into()),
    }));
    let fx = s.apply(Input::Discard {
        to: ann(),
        client_id: "c1".into(),
    });
    assert!(s.conversations[&ann()].messages.is_empty());
    assert!(fx.contains(&Effect::Unsent(UnsentChange::Remove("c1".into()))));
}

#[test]
fn a_refusal_that_names_no_message_is_for_the_calls() {
    let mut s = online();
    let refusal = ServerEvent::Error {
        code: ErrorCode::Conflict,
        message: "busy".into(),
        client_id: Some("call-uuid".into()),
    };
    let fx = s.apply(server(refusal.clone()));
    assert_eq!(fx, vec![Effect::Call(refusal)]);
    let invite = ServerEvent::CallInvite {
        call_id: "x".into(),
        from: ANN.into(),
        media: crate::protocol::CallMedia::Audio,
    };
    assert_eq!(s.apply(server(invite.clone())), vec![Effect::Call(invite)]);
}

#[test]
fn offline_sends_wait_in_the_outbox_and_unsent_ones_come_back() {
    let mut s = ChatState::new();
    // Typed before the socket is up: nothing goes out yet.
    let fx = send(&mut s, ann(), "early", "typed offline");
    assert!(sent(&fx).is_empty());
    assert_eq!(s.outbox().len(), 1);
    // The first ready sends it, and asks for what an earlier page left.
    let fx = s.apply(ready(0, Vec::new()));
    assert!(fx.contains(&Effect::RestoreUnsent));
    assert!(
        sent(&fx)
            .iter()
            .any(|m| matches!(m, ClientMessage::Send { client_id, .. } if client_id == "early"))
    );
    let fx = s.apply(Input::Restored(vec![
        Unsent {
            to: ann(),
            client_id: "early".into(),
            content: text("typed offline"),
            created_at: 1,
            failed: None,
        },
        Unsent {
            to: ann(),
            client_id: "old".into(),
            content: text("from yesterday"),
            created_at: 2,
            failed: None,
        },
        Unsent {
            to: ann(),
            client_id: "refused".into(),
            content: text("refused"),
            created_at: 3,
            failed: Some(ErrorCode::NotFriends),
        },
    ]));
    let resent: Vec<_> = sent(&fx)
        .into_iter()
        .filter_map(|m| match m {
            ClientMessage::Send { client_id, .. } => Some(client_id),
            _ => None,
        })
        .collect();
    assert_eq!(
        resent,
        vec!["old".to_owned()],
        "once each; refused ones wait"
    );
    let conv = &s.conversations[&ann()];
    assert_eq!(conv.messages.len(), 3);
    assert_eq!(
        conv.messages[2].delivery,
        Delivery::Failed(ErrorCode::NotFriends)
    );
}

#[test]
fn a_first_message_is_named_even_before_its_conversation_is_opened() {
    let mut s = online();
    s.apply(Input::People(vec![Person {
        id: ANN.into(),
        username: "ann".into(),
        nickname: "Ann".into(),
        avatar: String::new(),
    }]));
    s.apply(Input::Visible(false));
    let fx = s.apply(server(ServerEvent::Message(from_ann(1))));
    let conv = &s.conversations[&ann()];
    assert_eq!(s.title_of(conv), "Ann");
    assert!(fx.contains(&Effect::Notify {
        title: "Ann".into(),
        body: "hi".into()
    }));
    assert_eq!(conv.unread, 1);
}

#[test]
fn a_group_bubble_from_an_unknown_member_asks_for_the_members_once() {
    let mut s = online();
    s.apply(Input::LoadHistory(group()));
    let from_bob = |id| view(id, BOB, group(), &format!("b{id}"), "hello all");
    let fx = s.apply(server(ServerEvent::History {
        with: group(),
        messages: vec![from_bob(1)],
        more: false,
    }));
    assert!(fx.contains(&Effect::LookUpGroup("g-1".into())));
    let fx = s.apply(server(ServerEvent::Message(from_bob(2))));
    assert!(
        !fx.iter().any(|e| matches!(e, Effect::LookUpGroup(_))),
        "once"
    );
    let fx = s.apply(Input::People(vec![Person {
        id: BOB.into(),
        username: "bob".into(),
        nickname: "Bob".into(),
        avatar: String::new(),
    }]));
    assert!(fx.contains(&Effect::Changed(Part::Names)));
    assert_eq!(s.person(BOB).map(Person::name), Some("Bob"));
}

#[test]
fn a_group_member_s_new_picture_asks_for_the_members_again() {
    let mut s = online();
    s.apply(Input::LoadHistory(group()));
    s.apply(server(ServerEvent::History {
        with: group(),
        messages: vec![view(1, BOB, group(), "b1", "hello all")],
        more: false,
    }));
    s.apply(Input::People(vec![Person {
        id: BOB.into(),
        username: "bob".into(),
        nickname: "Bob".into(),
        avatar: String::new(),
    }]));
    let changed = |who: &str| {
        server(ServerEvent::Relation {
            change: crate::protocol::RelationChange::ProfileChanged,
            username: Some(who.into()),
            community_id: None,
        })
    };
    let fx = s.apply(changed("bob"));
    assert!(fx.contains(&Effect::LookUpGroup("g-1".into())), "{fx:?}");
    assert!(fx.contains(&Effect::ReloadContacts));
    // Someone the page shows nowhere: only the contact lists are reloaded.
    let fx = s.apply(changed("zed"));
    assert!(!fx.iter().any(|e| matches!(e, Effect::LookUpGroup(_))));
}

#[test]
fn typing_shows_for_a_while_and_a_message_ends_it() {
    let mut s = online();
    s.apply(server(ServerEvent::Message(from_ann(1))));
    s.apply(Input::Server {
        event: ServerEvent::Typing {
            from: ANN.into(),
            conversation: ann(),
        },
        now: 100.0,
    });
    assert_eq!(
        s.conversations[&ann()].typing,
        Some((ANN.into(), 100.0 + TYPING_SHOWS_MS))
    );
    s.apply(server(ServerEvent::Message(from_ann(2))));
    assert_eq!(s.conversations[&ann()].typing, None);
}

#[test]
fn leaving_a_group_removes_its_conversation_and_reloads_contacts() {
    let mut s = online();
    s.apply(server(ServerEvent::Message(view(
        1,
        BOB,
        group(),
        "b1",
        "x",
    ))));
    let fx = s.apply(server(ServerEvent::Relation {
        change: RelationChange::GroupLeft,
        username: None,
        community_id: Some("g-1".into()),
    }));
    assert!(!s.conversations.contains_key(&group()));
    assert!(fx.contains(&Effect::ReloadContacts));
}

#[test]
fn a_reconnect_forgets_history_requests_that_were_lost() {
    let mut s = online();
    s.apply(Input::LoadHistory(ann()));
    s.apply(Input::Disconnected { too_many: false });
    assert!(
        sent(&s.apply(Input::LoadHistory(ann()))).is_empty(),
        "offline"
    );
    s.apply(ready(0, Vec::new()));
    assert!(!s.conversations[&ann()].loading_history);
    assert_eq!(sent(&s.apply(Input::LoadHistory(ann()))).len(), 1);
}

#[test]
fn contacts_reload_and_calls_resume_after_a_reconnect_not_on_the_first_ready() {
    let mut s = ChatState::new();
    let first = s.apply(ready(0, Vec::new()));
    assert!(!first.contains(&Effect::ReloadContacts));
    assert!(!first.contains(&Effect::Reconnected));
    s.apply(Input::Disconnected { too_many: false });
    let again = s.apply(ready(0, Vec::new()));
    assert!(again.contains(&Effect::ReloadContacts));
    assert!(again.contains(&Effect::Reconnected));
}

#[test]
fn keys_name_one_message_each() {
    let mine = ChatMessage::stored(view(1, ME, ann(), "c1", "x"));
    let theirs = ChatMessage::stored(view(2, ANN, Peer::User(ME.into()), "c1", "y"));
    assert_eq!(mine.key(ME), "~c1");
    assert_eq!(theirs.key(ME), "ann-id/c1");
    for m in [&mine, &theirs] {
        assert!(m.has_key(&m.key(ME), ME));
    }
    assert!(!mine.has_key(&theirs.key(ME), ME));
    assert!(!theirs.has_key(&mine.key(ME), ME));
    assert!(!theirs.has_key("ann-id/c", ME));
}

#[test]
fn a_resync_asks_for_everything_after_the_cursor_and_reloads_the_lists() {
    let mut s = online();
    s.apply(server(ServerEvent::Message(from_ann(4))));
    let fx = s.apply(server(ServerEvent::Resync));
    assert_eq!(sent(&fx), vec![ClientMessage::Sync { after: 4 }]);
    assert!(fx.contains(&Effect::ReloadContacts));
    // What comes back is what the page has plus what it missed, each counted once.
    s.apply(server(ServerEvent::Synced {
        messages: vec![from_ann(4), from_ann(5)],
        more: false,
        cursor: 5,
    }));
    assert_eq!(s.conversations[&ann()].unread, 2);
    assert_eq!(s.cursor(), Some(5));
    // Offline, nothing is sent; the reconnect syncs anyway.
    s.apply(Input::Disconnected { too_many: false });
    assert!(sent(&s.apply(server(ServerEvent::Resync))).is_empty());
}
