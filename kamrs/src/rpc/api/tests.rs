use super::*;
use crate::config::Config;
use crate::registrar::Registrar;
use crate::sip::Limits;
use crate::stats::CoreStats;

pub(crate) fn state_for(config: &Config) -> State {
    let registrar = Registrar::new(
        crate::registrar::Settings::from(config),
        Arc::new(LocationTable::new()),
    );
    let router = Router::new(Limits::default(), registrar, Arc::new(CoreStats::default()));
    State::new(Arc::new(router), Settings::from(config))
}

pub(crate) fn state() -> State {
    state_for(&Config::default())
}

/// A state whose registrar authenticates with `auth`.
pub(crate) fn state_with_auth(auth: crate::auth::Authenticator) -> State {
    let config = Config::default();
    let registrar = Registrar::new(
        crate::registrar::Settings::from(&config),
        Arc::new(LocationTable::new()),
    )
    .with_auth(Arc::new(auth));
    let router = Router::new(Limits::default(), registrar, Arc::new(CoreStats::default()));
    State::new(Arc::new(router), Settings::from(&config))
}

/// A state with the flood filter on: `max_requests` per 60 s window,
/// nothing trusted.
pub(crate) fn state_with_pike(max_requests: u32) -> State {
    let config = Config::default();
    let registrar = Registrar::new(
        crate::registrar::Settings::from(&config),
        Arc::new(LocationTable::new()),
    );
    let pike = crate::pike::Pike::new(crate::pike::PikeSettings {
        window: std::time::Duration::from_secs(60),
        max_requests,
        block_time: std::time::Duration::from_secs(60),
        trusted: Vec::new(),
        max_tracked: crate::pike::MAX_TRACKED,
    });
    let router = Router::new(Limits::default(), registrar, Arc::new(CoreStats::default()))
        .with_pike(Arc::new(pike));
    State::new(Arc::new(router), Settings::from(&config))
}

pub(crate) fn state_with_domain() -> State {
    state_for(&Config {
        use_domain: true,
        ..Config::default()
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
            "ul.add",
            "ul.db_contacts",
            "ul.db_expired_contacts",
            "ul.db_users",
            "ul.dump",
            "ul.dump_page",
            "ul.flush",
            "ul.lookup",
            "ul.rm",
            "ul.rm_contact"
        ]
    );
}
