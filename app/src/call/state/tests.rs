//! Each rule of a call a user would notice, without a browser or a camera.
use super::*;

const ANN: &str = "ann-id";

fn candidate(n: u32) -> IceCandidate {
    IceCandidate {
        candidate: format!("candidate:{n} 1 udp 1 127.0.0.1 {n} typ host"),
        sdp_mid: Some("0".into()),
        sdp_m_line_index: Some(0),
    }
}

fn sent(fx: &[Effect]) -> Vec<ClientMessage> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Transmit(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

fn phase(s: &CallState) -> Option<Phase> {
    s.view().map(|v| v.phase)
}

/// A caller whose devices are ready and whose call rings.
fn ringing_out() -> CallState {
    let mut s = CallState::new();
    s.apply(Input::Start {
        call_id: "c1".into(),
        peer: ANN.into(),
        media: CallMedia::Video,
    });
    s.apply(Input::MediaReady {
        call_id: "c1".into(),
    });
    s.apply(Input::Server(ServerEvent::CallRinging {
        call_id: "c1".into(),
    }));
    s
}

/// The relay rings this page for `call_id` from `from` (a voice call).
fn invited(call_id: &str, from: &str) -> Input {
    Input::Server(ServerEvent::CallInvite {
        call_id: call_id.into(),
        from: from.into(),
        media: CallMedia::Audio,
    })
}

/// A callee whose call rings here.
fn ringing_in() -> CallState {
    let mut s = CallState::new();
    s.apply(invited("c1", ANN));
    s
}

/// Both sides' connections exist.
fn connecting_caller() -> CallState {
    let mut s = ringing_out();
    s.apply(Input::Server(ServerEvent::CallAccepted {
        call_id: "c1".into(),
    }));
    s
}

fn connecting_callee() -> CallState {
    let mut s = ringing_in();
    s.apply(Input::Accept);
    s.apply(Input::MediaReady {
        call_id: "c1".into(),
    });
    s.apply(Input::ConnectionReady {
        call_id: "c1".into(),
    });
    s
}

fn remote(offer: bool, stable: bool) -> Input {
    Input::RemoteDescription {
        call_id: "c1".into(),
        offer,
        sdp: "v=0".into(),
        stable,
    }
}

#[test]
fn a_caller_invites_only_once_the_devices_are_ready() {
    let mut s = CallState::new();
    let fx = s.apply(Input::Start {
        call_id: "c1".into(),
        peer: ANN.into(),
        media: CallMedia::Video,
    });
    assert!(sent(&fx).is_empty());
    assert!(fx.contains(&Effect::GetMedia {
        call_id: "c1".into(),
        video: true
    }));
    assert_eq!(phase(&s), Some(Phase::Outgoing));
    let fx = s.apply(Input::MediaReady {
        call_id: "c1".into(),
    });
    assert_eq!(
        sent(&fx),
        vec![ClientMessage::CallInvite {
            call_id: "c1".into(),
            to: Peer::User(ANN.into()),
            media: CallMedia::Video
        }]
    );
    s.apply(Input::Server(ServerEvent::CallRinging {
        call_id: "c1".into(),
    }));
    assert_eq!(phase(&s), Some(Phase::Ringing));
    // A second call while one is on screen does nothing.
    assert!(
        s.apply(Input::Start {
            call_id: "c2".into(),
            peer: ANN.into(),
            media: CallMedia::Audio
        })
        .is_empty()
    );
}

#[test]
fn no_camera_ends_the_attempt_in_words_and_sends_nothing() {
    let mut s = CallState::new();
    s.apply(Input::Start {
        call_id: "c1".into(),
        peer: ANN.into(),
        media: CallMedia::Video,
    });
    let fx = s.apply(Input::Failed {
        call_id: "c1".into(),
        problem: Msg::DeviceDenied,
    });
    assert!(sent(&fx).is_empty());
    assert!(fx.contains(&Effect::Release));
    let v = s.view().unwrap();
    assert_eq!(v.phase, Phase::Ended(CallOutcome::Failed));
    assert_eq!(v.error, Some(Msg::DeviceDenied));
}

#[test]
fn the_callee_rings_answers_and_says_yes_once_it_can_take_the_offer() {
    let mut s = ringing_in();
    assert_eq!(phase(&s), Some(Phase::Incoming));
    let fx = s.apply(Input::Accept);
    assert!(fx.contains(&Effect::StopRing));
    assert!(sent(&fx).is_empty());
    let fx = s.apply(Input::MediaReady {
        call_id: "c1".into(),
    });
    assert_eq!(
        fx,
        vec![Effect::Connect {
            call_id: "c1".into(),
            add_tracks: false
        }]
    );
    let fx = s.apply(Input::ConnectionReady {
        call_id: "c1".into(),
    });
    assert_eq!(
        sent(&fx),
        vec![ClientMessage::CallAccept {
            call_id: "c1".into()
        }]
    );
}

#[test]
fn a_call_declined_or_answered_elsewhere_stops_ringing_here() {
    for outcome in [CallOutcome::AnsweredElsewhere, CallOutcome::Declined] {
        let mut s = ringing_in();
        let fx = s.apply(Input::Server(ServerEvent::CallEnded {
            call_id: "c1".into(),
            outcome,
            duration_ms: 0,
        }));
        assert!(fx.contains(&Effect::Release), "the ringer stops");
        assert!(sent(&fx).is_empty());
        assert_eq!(phase(&s), Some(Phase::Ended(outcome)));
        // Shown for a moment, then gone.
        assert!(fx.contains(&Effect::ClearLater {
            call_id: "c1".into()
        }));
        s.apply(Input::Clear {
            call_id: "c1".into(),
        });
        assert!(s.view().is_none());
    }
}

#[test]
fn hanging_up_says_what_fits_where_the_call_stands() {
    let mut s = ringing_in();
    assert_eq!(
        sent(&s.apply(Input::HangUp { now: 0.0 })),
        vec![ClientMessage::CallDecline {
            call_id: "c1".into()
        }]
    );
    assert_eq!(phase(&s), Some(Phase::Ended(CallOutcome::Declined)));

    let mut s = ringing_out();
    assert_eq!(
        sent(&s.apply(Input::HangUp { now: 0.0 })),
        vec![ClientMessage::CallCancel {
            call_id: "c1".into()
        }]
    );
    assert_eq!(phase(&s), Some(Phase::Ended(CallOutcome::Cancelled)));

    let mut s = connecting_caller();
    s.apply(Input::Ice {
        call_id: "c1".into(),
        state: Ice::Connected,
        now: 1_000.0,
    });
    assert_eq!(phase(&s), Some(Phase::Active));
    assert_eq!(
        sent(&s.apply(Input::HangUp { now: 61_000.0 })),
        vec![ClientMessage::CallHangup {
            call_id: "c1".into()
        }]
    );
    let v = s.view().unwrap();
    assert_eq!(v.phase, Phase::Ended(CallOutcome::Completed));
    assert_eq!(v.duration_ms, 60_000);
    // The ended call's screen closes on a second press.
    assert!(s.apply(Input::HangUp { now: 62_000.0 }).is_empty());
    assert!(s.view().is_none());
}

#[test]
fn an_invitation_during_a_call_is_declined_without_disturbing_it() {
    let mut s = connecting_caller();
    let fx = s.apply(invited("c2", "bob-id"));
    assert_eq!(
        sent(&fx),
        vec![ClientMessage::CallDecline {
            call_id: "c2".into()
        }]
    );
    assert_eq!(s.view().unwrap().call_id, "c1");
    assert_eq!(phase(&s), Some(Phase::Connecting));
}

#[test]
fn a_late_candidate_is_kept_until_the_remote_description_is_set() {
    let mut s = connecting_callee();
    for n in [1, 2] {
        let fx = s.apply(Input::Server(ServerEvent::CallCandidate {
            call_id: "c1".into(),
            candidate: candidate(n),
        }));
        assert!(fx.is_empty(), "kept, not added yet");
    }
    let fx = s.apply(remote(true, true));
    assert_eq!(
        fx,
        vec![Effect::SetRemote {
            call_id: "c1".into(),
            offer: true,
            sdp: "v=0".into()
        }]
    );
    let fx = s.apply(Input::RemoteSet {
        call_id: "c1".into(),
        offer: true,
    });
    assert_eq!(
        fx,
        vec![
            Effect::AddCandidates {
                call_id: "c1".into(),
                candidates: vec![candidate(1), candidate(2)]
            },
            Effect::MakeAnswer {
                call_id: "c1".into()
            }
        ]
    );
    // Once set, a candidate goes straight in.
    let fx = s.apply(Input::Server(ServerEvent::CallCandidate {
        call_id: "c1".into(),
        candidate: candidate(3),
    }));
    assert_eq!(
        fx,
        vec![Effect::AddCandidates {
            call_id: "c1".into(),
            candidates: vec![candidate(3)]
        }]
    );
}

#[test]
fn on_an_offer_collision_the_caller_ignores_and_the_callee_gives_way() {
    // The caller is making an offer when the callee's arrives: ignored.
    let mut s = connecting_caller();
    s.apply(Input::MakingOffer {
        call_id: "c1".into(),
        making: true,
    });
    assert!(s.apply(remote(true, true)).is_empty());
    // Its own offer is not stable either: still ignored after it was sent.
    s.apply(Input::MakingOffer {
        call_id: "c1".into(),
        making: false,
    });
    assert!(s.apply(remote(true, false)).is_empty());
    // An answer is never a collision.
    assert_eq!(s.apply(remote(false, false)).len(), 1);

    // The callee (polite) takes the colliding offer: the browser rolls its own back.
    let mut s = connecting_callee();
    s.apply(Input::MakingOffer {
        call_id: "c1".into(),
        making: true,
    });
    assert_eq!(s.apply(remote(true, false)).len(), 1);
}

#[test]
fn descriptions_go_out_as_offers_and_answers_of_the_call() {
    let mut s = connecting_caller();
    let fx = s.apply(Input::LocalDescription {
        call_id: "c1".into(),
        offer: true,
        sdp: "o".into(),
    });
    assert_eq!(
        sent(&fx),
        vec![ClientMessage::CallOffer {
            call_id: "c1".into(),
            sdp: "o".into()
        }]
    );
    let fx = s.apply(Input::LocalCandidate {
        call_id: "c1".into(),
        candidate: candidate(1),
    });
    assert_eq!(sent(&fx).len(), 1);
    // Nothing of an old call goes out.
    assert!(
        s.apply(Input::LocalDescription {
            call_id: "old".into(),
            offer: false,
            sdp: "a".into()
        })
        .is_empty()
    );
}

#[test]
fn a_broken_connection_restarts_ice_and_gives_up_only_if_that_break_lasts() {
    let mut s = connecting_caller();
    s.apply(Input::Ice {
        call_id: "c1".into(),
        state: Ice::Connected,
        now: 1_000.0,
    });
    let fx = s.apply(Input::Ice {
        call_id: "c1".into(),
        state: Ice::Failed,
        now: 5_000.0,
    });
    assert_eq!(phase(&s), Some(Phase::Reconnecting));
    assert!(fx.contains(&Effect::RestartIce {
        call_id: "c1".into()
    }));
    assert!(fx.contains(&Effect::GiveUpLater {
        call_id: "c1".into(),
        since: 5_000.0
    }));
    // It heals, and breaks again later: the first timer no longer counts.
    s.apply(Input::Ice {
        call_id: "c1".into(),
        state: Ice::Connected,
        now: 8_000.0,
    });
    assert_eq!(phase(&s), Some(Phase::Active));
    assert_eq!(
        s.view().unwrap().started_at,
        Some(1_000.0),
        "the timer runs on"
    );
    s.apply(Input::Ice {
        call_id: "c1".into(),
        state: Ice::Disconnected,
        now: 9_000.0,
    });
    assert!(
        s.apply(Input::GiveUp {
            call_id: "c1".into(),
            since: 5_000.0
        })
        .is_empty()
    );
    assert_eq!(phase(&s), Some(Phase::Reconnecting));
    // This break lasts: the call ends, and the other side hears so.
    let fx = s.apply(Input::GiveUp {
        call_id: "c1".into(),
        since: 9_000.0,
    });
    assert_eq!(
        sent(&fx),
        vec![ClientMessage::CallHangup {
            call_id: "c1".into()
        }]
    );
    assert_eq!(phase(&s), Some(Phase::Ended(CallOutcome::Completed)));
}

#[test]
fn a_refusal_ends_the_call_in_words_and_a_late_one_is_quiet() {
    let mut s = ringing_out();
    s.apply(Input::Refused {
        call_id: "c1".into(),
        code: ErrorCode::NotFriends,
    });
    let v = s.view().unwrap();
    assert_eq!(v.phase, Phase::Ended(CallOutcome::Failed));
    assert_eq!(v.error, Some(Msg::ErrNotFriends));
    assert!(
        s.apply(Input::Refused {
            call_id: "c1".into(),
            code: ErrorCode::NotFound
        })
        .is_empty()
    );
    assert_eq!(
        s.apply(Input::Refused {
            call_id: "zz".into(),
            code: ErrorCode::NotFound
        }),
        vec![Effect::Unexpected {
            call_id: "zz".into(),
            code: ErrorCode::NotFound
        }]
    );
}

#[test]
fn the_callee_that_cannot_start_tells_the_caller_no() {
    let mut s = ringing_in();
    s.apply(Input::Accept);
    let fx = s.apply(Input::Failed {
        call_id: "c1".into(),
        problem: Msg::NoDevice,
    });
    assert_eq!(
        sent(&fx),
        vec![ClientMessage::CallDecline {
            call_id: "c1".into()
        }]
    );
    assert_eq!(phase(&s), Some(Phase::Ended(CallOutcome::Failed)));
}

#[test]
fn mute_and_camera_toggle_and_say_so_to_the_engine() {
    let mut s = connecting_callee();
    assert_eq!(s.apply(Input::ToggleMute), vec![Effect::SetMuted(true)]);
    assert_eq!(
        s.apply(Input::ToggleCamera),
        vec![Effect::SetCamera { off: true }]
    );
    assert_eq!(s.apply(Input::ToggleMute), vec![Effect::SetMuted(false)]);
    let v = s.view().unwrap();
    assert!(!v.muted && v.camera_off);
}

/// An answered call, media flowing, on the caller's side.
fn talking_caller() -> CallState {
    let mut s = connecting_caller();
    s.apply(Input::Ice {
        call_id: "c1".into(),
        state: Ice::Connected,
        now: 1_000.0,
    });
    s
}

#[test]
fn a_socket_that_drops_during_a_call_resumes_it_and_the_call_goes_on() {
    let mut s = talking_caller();
    assert_eq!(
        sent(&s.apply(Input::Reconnected)),
        vec![ClientMessage::CallResume {
            call_id: "c1".into()
        }]
    );
    assert_eq!(phase(&s), Some(Phase::Active), "media never stopped");
    // The callee too, once it has answered.
    let mut callee = connecting_callee();
    assert_eq!(
        sent(&callee.apply(Input::Reconnected)),
        vec![ClientMessage::CallResume {
            call_id: "c1".into()
        }]
    );
    // Broken media as well: its ICE restart's offer may have been lost with the socket.
    s.apply(Input::Ice {
        call_id: "c1".into(),
        state: Ice::Disconnected,
        now: 2_000.0,
    });
    let fx = s.apply(Input::Reconnected);
    assert!(fx.contains(&Effect::RestartIce {
        call_id: "c1".into()
    }));
}

#[test]
fn a_call_the_relay_no_longer_has_ends_as_dropped() {
    let mut s = talking_caller();
    s.apply(Input::Reconnected);
    s.apply(Input::Refused {
        call_id: "c1".into(),
        code: ErrorCode::NotFound,
    });
    let v = s.view().unwrap();
    assert_eq!(v.phase, Phase::Ended(CallOutcome::Failed));
    assert_eq!(v.error, None, "not \"could not be started\"");
}

#[test]
fn nothing_to_resume_before_the_relay_knows_the_call() {
    // The caller still getting the camera has invited nobody yet.
    let mut s = CallState::new();
    s.apply(Input::Start {
        call_id: "c1".into(),
        peer: ANN.into(),
        media: CallMedia::Audio,
    });
    assert!(s.apply(Input::Reconnected).is_empty());
    // A callee still ringing, or answering but not yet connected, has nothing to resume.
    let mut s = ringing_in();
    assert!(s.apply(Input::Reconnected).is_empty());
    s.apply(Input::Accept);
    assert!(sent(&s.apply(Input::Reconnected)).is_empty());
    assert!(CallState::new().apply(Input::Reconnected).is_empty());
}

#[test]
fn a_call_rung_again_on_a_new_socket_keeps_ringing() {
    let mut s = ringing_in();
    let fx = s.apply(invited("c1", ANN));
    assert!(sent(&fx).is_empty(), "not declined: {fx:?}");
    assert_eq!(phase(&s), Some(Phase::Incoming));
    // Another call while this one rings is still refused.
    let fx = s.apply(invited("c2", "bob-id"));
    assert_eq!(
        sent(&fx),
        vec![ClientMessage::CallDecline {
            call_id: "c2".into()
        }]
    );
}
