use super::*;

fn emp(id: &str, aliases: &[&str]) -> EmployeeRecord {
    EmployeeRecord {
        employee_id: id.into(),
        name: id.into(),
        team: "t".into(),
        supervisor: "s".into(),
        shift: None,
        aliases: aliases.iter().map(|a| a.to_string()).collect(),
        start_date: None,
        end_date: None,
    }
}

#[test]
fn device_scoped_aliases_resolve_per_device_before_global_ones() {
    // RecPush personId 57 is a different person on each terminal.
    let d = Directory::new(&[
        emp("E001", &["device:1026731:57", "Leyla"]),
        emp("E002", &["device:1026732:57"]),
        emp("E003", &["device:24:0F:AA:01:02:03:9"]),
    ]);
    let p57 = Identity::Alias("57".into());
    assert_eq!(d.resolve(&p57, Some("1026731")).unwrap(), "E001");
    assert_eq!(d.resolve(&p57, Some("1026732")).unwrap(), "E002");
    let e = d.resolve(&p57, Some("1026733")).unwrap_err();
    assert!(e.starts_with("unknown alias \"57\""), "{e}");
    assert!(d.resolve(&p57, None).is_err());
    // Device ids with colons (MAC addresses) work: the id is after the last `:`.
    assert_eq!(
        d.resolve(&Identity::Alias("9".into()), Some("24:0f:aa:01:02:03"))
            .unwrap(),
        "E003"
    );
    assert_eq!(
        d.resolve(&Identity::Alias("leyla".into()), Some("x"))
            .unwrap(),
        "E001"
    );
    assert_eq!(device_alias("device:1026731:57"), Some(("1026731", "57")));
    assert_eq!(device_alias("device::57"), None);
    assert_eq!(device_alias("57"), None);
}

#[test]
fn unknown_and_forged_employee_ids_are_refused_once_employees_exist() {
    let d = Directory::new(&[emp("E001", &[])]);
    assert_eq!(
        d.resolve(&Identity::Employee("E001".into()), None).unwrap(),
        "E001"
    );
    let e = d
        .resolve(&Identity::Employee("&xxe;".into()), None)
        .unwrap_err();
    assert!(e.starts_with("unknown employee \"&xxe;\""), "{e}");
    // Before any import, ids are taken as sent.
    let empty = Directory::new(&[]);
    assert_eq!(
        empty
            .resolve(&Identity::Employee("E9".into()), None)
            .unwrap(),
        "E9"
    );
}

#[test]
fn alias_keys_canonicalise_card_numbers() {
    assert_eq!(alias_keys("0012345678"), vec!["0012345678", "12345678"]);
    assert_eq!(alias_keys("0C8707"), vec!["0c8707", "820999"]);
    assert_eq!(alias_keys("Leyla"), vec!["leyla"]);
}

/// Issue 11 (12): an all-digit hex UID is said to be hex explicitly;
/// a decimal alias keeps its meaning.
#[test]
fn hex_prefix_in_the_alias_column() {
    // esp-rfid's `"uid":"27373963"` is read as hex by the decoder.
    let decoded = canonical_card("27373963", 16).unwrap();
    assert_eq!(decoded, "657930595");
    assert!(alias_keys("hex:27373963").contains(&decoded));
    assert!(alias_keys("HEX:27373963").contains(&decoded));
    assert!(alias_keys("0x27373963").contains(&decoded));
    assert!(!alias_keys("27373963").contains(&decoded));
    assert_eq!(alias_keys("1000000042"), vec!["1000000042"]);
    // Not hex after the prefix: only the text itself.
    assert_eq!(alias_keys("hex:xyz"), vec!["hex:xyz"]);
}
