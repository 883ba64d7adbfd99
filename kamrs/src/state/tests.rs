use super::*;

#[test]
fn the_core_shares_the_registrars_table_and_authenticator() {
    let table = Arc::new(LocationTable::new());
    let core = Core::new(
        Registrar::new(crate::registrar::Settings::default(), Arc::clone(&table)),
        Arc::new(CoreStats::default()),
    );
    assert!(Arc::ptr_eq(&core.table, &table));
    assert!(Arc::ptr_eq(core.registrar.table(), &table));
    assert!(core.auth.is_none() && core.pike.is_none());
    let copy = core.clone();
    assert!(Arc::ptr_eq(&copy.registrar, &core.registrar));
    assert!(Arc::ptr_eq(&copy.stats, &core.stats));
}
