use super::*;
use crate::registrar::save::Refresh;
use crate::usrloc::Parts;

const NOW: u64 = 1_000;

fn binding(contact: &str, call_id: &str, expires_at: u64) -> Binding {
    let b = Binding::for_test(contact, expires_at);
    Binding::new(Parts {
        call_id,
        ..b.parts()
    })
}

fn refresh(expires_at: u64) -> Refresh {
    Refresh {
        expires_at,
        cseq: 2,
        q: None,
        source: None,
        reg_id: 0,
        methods: u32::MAX,
        last_modified: NOW,
        cflags: 0,
    }
}

fn outcomes(
    changes: &[Change],
    evicted: usize,
    current: &[Binding],
) -> Vec<(Outcome, String, u64)> {
    classify(changes, evicted, current, NOW)
        .map(|(o, c, e)| (o, c.to_owned(), e))
        .collect()
}

#[test]
fn each_change_is_named_for_what_it_does_to_the_phone() {
    let current = [
        binding("sip:a@192.0.2.1:5060", "call-1", NOW + 60),
        binding("sip:b@192.0.2.2:5060", "call-2", NOW + 60),
        binding("sip:c@192.0.2.3:5060", "call-3", NOW + 60),
        binding("sip:d@192.0.2.4:5060", "call-4", NOW + 60),
    ];
    let changes = [
        Change::Add(binding("sip:new@192.0.2.9:5060", "call-9", NOW + 3600)),
        Change::Refresh {
            index: 0,
            refresh: refresh(NOW + 1800),
        },
        // Same instance from a new TCP port.
        Change::Replace {
            index: 1,
            binding: binding("sip:b@192.0.2.2:40000;transport=tcp", "call-2", NOW + 600),
        },
        // A restarted phone: same contact, new Call-ID.
        Change::Replace {
            index: 2,
            binding: binding("sip:c@192.0.2.3:5060", "call-new", NOW + 600),
        },
        Change::Remove { index: 3 },
    ];
    assert_eq!(
        outcomes(&changes, 0, &current),
        vec![
            (Outcome::Registered, "sip:new@192.0.2.9:5060".into(), 3600),
            (Outcome::Refreshed, "sip:a@192.0.2.1:5060".into(), 1800),
            (
                Outcome::Replaced,
                "sip:b@192.0.2.2:40000;transport=tcp".into(),
                600
            ),
            (Outcome::Registered, "sip:c@192.0.2.3:5060".into(), 600),
            (Outcome::Unregistered, "sip:d@192.0.2.4:5060".into(), 0),
        ]
    );
}

#[test]
fn trailing_removals_made_for_room_are_evictions() {
    let current = [
        binding("sip:old@192.0.2.1:5060", "c1", NOW + 60),
        binding("sip:gone@192.0.2.2:5060", "c2", NOW + 60),
    ];
    let changes = [
        Change::Remove { index: 1 },
        Change::Add(binding("sip:new@192.0.2.3:5060", "c3", NOW + 60)),
        Change::Remove { index: 0 },
    ];
    let got: Vec<Outcome> = outcomes(&changes, 1, &current)
        .into_iter()
        .map(|(o, _, _)| o)
        .collect();
    assert_eq!(
        got,
        [Outcome::Unregistered, Outcome::Registered, Outcome::Evicted]
    );
}

#[test]
fn an_index_outside_the_list_is_skipped_not_a_panic() {
    let changes = [Change::Remove { index: 7 }];
    assert!(outcomes(&changes, 0, &[]).is_empty());
}
