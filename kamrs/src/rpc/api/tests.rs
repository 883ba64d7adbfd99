use super::*;
use crate::registrar::Registrar;
use crate::stats::CoreStats;

/// A registrar with the REGISTER rules of `settings` (the fields both
/// describe), otherwise the registrar's defaults.
fn registrar_for(settings: &Settings) -> Registrar {
    let rules = crate::registrar::Settings {
        use_domain: settings.use_domain,
        contact_max_size: settings.contact_max_size,
        default_expires: settings.default_expires,
        max_expires: settings.max_expires,
        max_contacts: settings.max_contacts,
        ..crate::registrar::Settings::default()
    };
    Registrar::new(rules, Arc::new(LocationTable::new()))
}

pub(crate) fn state_for(settings: Settings) -> State {
    let core = Core::new(registrar_for(&settings), Arc::new(CoreStats::default()));
    State::new(core, settings)
}

pub(crate) fn state() -> State {
    state_for(Settings::default())
}

/// A state whose registrar authenticates with `auth`.
pub(crate) fn state_with_auth(auth: crate::auth::Authenticator) -> State {
    let settings = Settings::default();
    let registrar = registrar_for(&settings).with_auth(Arc::new(auth));
    State::new(
        Core::new(registrar, Arc::new(CoreStats::default())),
        settings,
    )
}

/// A state with the flood filter on: `max_requests` per 60 s window,
/// nothing trusted.
pub(crate) fn state_with_pike(max_requests: u32) -> State {
    let settings = Settings::default();
    let pike = crate::pike::Pike::new(crate::pike::PikeSettings {
        window: std::time::Duration::from_secs(60),
        max_requests,
        block_time: std::time::Duration::from_secs(60),
        trusted: Vec::new(),
        max_tracked: crate::pike::MAX_TRACKED,
    });
    let core = Core::new(registrar_for(&settings), Arc::new(CoreStats::default()))
        .with_pike(Arc::new(pike));
    State::new(core, settings)
}

pub(crate) fn state_with_domain() -> State {
    state_for(Settings {
        use_domain: true,
        ..Settings::default()
    })
}

pub(crate) fn method_names_for_tests() -> Vec<String> {
    Api::new(state())
        .into_module()
        .method_names()
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn list_methods_names_kamailios_methods() {
    let module = Api::new(state()).into_module();
    let names: Vec<String> = module
        .call(
            "system.listMethods",
            jsonrpsee::core::EmptyServerParams::new(),
        )
        .await
        .unwrap();
    assert_eq!(
        names,
        [
            "auth.realm",
            "core.info",
            "core.uptime",
            "core.version",
            "pike.top",
            "stats.get_statistics",
            "stats.reset_statistics",
            "subscriber.add",
            "subscriber.list",
            "subscriber.reload",
            "subscriber.rm",
            "system.listMethods",
            "tls.info",
            "tls.list",
            "tls.reload",
            "ul.add",
            "ul.db_contacts",
            "ul.db_expired_contacts",
            "ul.db_users",
            "ul.dump",
            "ul.dump_page",
            "ul.dump_prefix",
            "ul.flush",
            "ul.lookup",
            "ul.rm",
            "ul.rm_contact",
            "ul.subscribe",
            "ul.unsubscribe"
        ]
    );
}
