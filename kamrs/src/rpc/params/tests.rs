use super::*;

fn run(method: &str, params: &str) -> Result<String, String> {
    let raw = RawValue::from_string(params.to_owned()).unwrap();
    match check(method, Some(&raw)) {
        Ok(Some(p)) => Ok(p.get().to_owned()),
        Ok(None) => Ok("<unchecked>".to_owned()),
        Err(e) => Err(e.message().to_owned()),
    }
}

#[test]
fn good_calls_are_normalised() {
    assert_eq!(
        run("ul.lookup", r#"["location","alice"]"#).unwrap(),
        r#"["location","alice"]"#
    );
    assert_eq!(
        run("ul.lookup", r#"["location",1001]"#).unwrap(),
        r#"["location","1001"]"#
    );
    assert_eq!(
        run("ul.lookup", r#"{"aor":"alice","table":"location"}"#).unwrap(),
        r#"["location","alice"]"#
    );
    assert_eq!(
        run(
            "ul.add",
            r#"["location","a","sip:a@h","3600","0.5","0",0,"1",4294967295]"#
        )
        .unwrap(),
        r#"["location","a","sip:a@h",3600,0.5,"0",0,1,4294967295]"#
    );
    assert_eq!(
        run("ul.add", r#"["location","a","sip:a@h",0,-1,".",0,0,0]"#).unwrap(),
        r#"["location","a","sip:a@h",0,-1.0,".",0,0,0]"#
    );
    assert_eq!(run("ul.dump", "[]").unwrap(), "[]");
    assert_eq!(run("ul.dump", r#"["brief"]"#).unwrap(), r#"["brief"]"#);
    assert_eq!(run("ul.dump", "null").unwrap(), "[]");
    assert_eq!(run("core.uptime", "[]").unwrap(), "[]");
    assert_eq!(run("no.such", "[1]").unwrap(), "<unchecked>");
}

#[test]
fn statistics_take_kamailios_variadic_names() {
    for p in [
        r#"["usrloc:","registrar:accepted_regs"]"#,
        r#"[["usrloc:","registrar:accepted_regs"]]"#,
    ] {
        assert_eq!(
            run("stats.get_statistics", p).unwrap(),
            r#"[["usrloc:","registrar:accepted_regs"]]"#
        );
    }
    assert_eq!(
        run("stats.reset_statistics", r#"{"names":["all"]}"#).unwrap(),
        r#"[["all"]]"#
    );
    let e = run("stats.get_statistics", "[]").unwrap_err();
    assert!(e.contains("at least one statistic"), "{e}");
    let e = run("stats.get_statistics", r#"["all", 5]"#).unwrap_err();
    assert!(e.contains("statistic name 2"), "{e}");
}

#[test]
fn bad_calls_name_the_argument_and_why() {
    for (method, params, want) in [
            (
                "ul.lookup",
                r#"["location"]"#,
                "argument 2 `aor` is missing",
            ),
            (
                "ul.lookup",
                r#"["location", null]"#,
                "argument 2 `aor` is missing",
            ),
            (
                "ul.lookup",
                r#"["location","a","b"]"#,
                "takes 2 arguments, got 3",
            ),
            (
                "ul.lookup",
                r#"["location",{"x":1}]"#,
                "argument 2 `aor`: expected a string, got {\"x\":1}",
            ),
            ("ul.lookup", r#"{"aor":"a"}"#, "argument `table` is missing"),
            (
                "ul.lookup",
                r#"{"table":"location","aor":"a","x":1}"#,
                "unknown argument `x`",
            ),
            ("ul.lookup", r#""alice""#, "params must be an array"),
            (
                "ul.add",
                r#"["location","a","sip:a@h","soon",1,"0",0,0,0]"#,
                "argument 4 `expires`: expected seconds",
            ),
            (
                "ul.add",
                r#"["location","a","sip:a@h",-5,1,"0",0,0,0]"#,
                "argument 4 `expires`",
            ),
            (
                "ul.add",
                r#"["location","a","sip:a@h",5,1.5,"0",0,0,0]"#,
                "argument 5 `q`: expected a q-value",
            ),
            (
                "ul.add",
                r#"["location","a","sip:a@h",5,1,"0",0,0,4294967296]"#,
                "argument 9 `methods`",
            ),
            (
                "ul.add",
                r#"["location","a","sip:a@h",5,1,"0",0,0]"#,
                "argument 9 `methods` is missing",
            ),
            ("ul.dump", r#"["full"]"#, "the only option is \"brief\""),
            ("ul.dump_page", r#"[]"#, "argument 1 `cursor` is missing"),
            ("ul.dump_page", r#"["", 0]"#, "argument 2 `limit`: expected how many AoRs per page, a whole number from 1 to 10000, got 0"),
            ("ul.dump_page", r#"["", 10001]"#, "argument 2 `limit`"),
            ("ul.dump_page", r#"["", "lots"]"#, "argument 2 `limit`"),
            ("ul.dump_page", r#"[""]"#, "argument 2 `limit` is missing"),
            ("ul.dump_page", r#"["", 5, "full"]"#, "argument 3 `brief`: the only option is \"brief\""),
            ("ul.dump_page", r#"[{}, 5]"#, "argument 1 `cursor`: expected a string"),
            ("core.version", r#"[1]"#, "takes 0 arguments, got 1"),
        ] {
            let e = run(method, params).unwrap_err();
            assert!(e.starts_with(&format!("{method}: ")), "{e}");
            assert!(e.contains(want), "{method} {params}: {e}");
        }
}

#[test]
fn subscriber_arguments() {
    let md5 = "0123456789ABCDEF0123456789abcdef";
    let sha = "a".repeat(64);
    assert_eq!(
        run(
            "subscriber.add",
            &format!(r#"["alice","example.com","{md5}","{sha}"]"#)
        )
        .unwrap(),
        format!(
            r#"["alice","example.com","{}","{sha}"]"#,
            md5.to_ascii_lowercase()
        )
    );
    assert_eq!(
        run("subscriber.add", r#"[1001,"[2001:db8::1]","","",null]"#).unwrap_err(),
        "subscriber.add: takes 4 arguments, got 5"
    );
    assert_eq!(
        run("subscriber.add", r#"[1001,"192.0.2.1","",""]"#).unwrap(),
        r#"["1001","192.0.2.1","",""]"#
    );
    assert_eq!(
        run(
            "subscriber.add",
            r#"{"username":"a.b-c_d%41","domain":"sip.example.com","ha1":"","ha1_sha256":""}"#
        )
        .unwrap(),
        r#"["a.b-c_d%41","sip.example.com","",""]"#
    );
    assert_eq!(
        run("subscriber.rm", r#"["alice","example.com"]"#).unwrap(),
        r#"["alice","example.com"]"#
    );
    assert_eq!(run("subscriber.list", "[]").unwrap(), "[]");
    assert_eq!(run("subscriber.reload", "null").unwrap(), "[]");
    assert_eq!(
        run("auth.realm", r#"["Example.COM"]"#).unwrap(),
        r#"["Example.COM"]"#
    );
    for (params, want) in [
            (
                r#"["alice","example.com","abc",""]"#,
                "argument 3 `ha1`: expected 32 hex digits (hex MD5 of \"user:realm:password\") or \"\" for none, got 3 characters",
            ),
            (
                r#"["alice","example.com","","0123456789abcdef0123456789abcdef"]"#,
                "argument 4 `ha1_sha256`: expected 64 hex digits",
            ),
            (
                r#"["alice","example.com","0123456789abcdef0123456789abcdeg",""]"#,
                "argument 3 `ha1`: expected 32 hex digits (hex MD5 of \"user:realm:password\") or \"\" for none, got a character that is not a hex digit",
            ),
            (r#"["alice","example.com",32,""]"#, "argument 3 `ha1`"),
            (r#"["alice@example.com","example.com","",""]"#, "argument 1 `username`: \"alice@example.com\" has `@`"),
            (r#"["al ice","example.com","",""]"#, "a space, control or non-ASCII"),
            (r#"["a%4","example.com","",""]"#, "`%` not followed by two hex digits"),
            (r#"["","example.com","",""]"#, "argument 1 `username`: the user name is empty"),
            (r#"["alice","exa mple.com","",""]"#, "argument 2 `domain`: expected a domain"),
            (r#"["alice","example..com","",""]"#, "argument 2 `domain`"),
            (r#"["alice","[not-v6]","",""]"#, "argument 2 `domain`"),
            (r#"["alice",5,"",""]"#, "argument 2 `domain`"),
            (r#"["alice","example.com",""]"#, "argument 4 `ha1_sha256` is missing"),
        ] {
            let e = run("subscriber.add", params).unwrap_err();
            assert!(e.starts_with("subscriber.add: "), "{e}");
            assert!(e.contains(want), "{params}: {e}");
        }
    let long = format!(r#"["{}","example.com"]"#, "u".repeat(MAX_USERNAME + 1));
    assert!(run("subscriber.rm", &long)
        .unwrap_err()
        .contains("at most 64"));
    // A password pasted where a hash goes is never quoted back.
    let e = run(
        "subscriber.add",
        r#"["alice","example.com","correct horse battery staple",""]"#,
    )
    .unwrap_err();
    assert!(!e.contains("horse"), "{e}");
}

#[test]
fn pike_top_takes_an_optional_count() {
    assert_eq!(run("pike.top", "[]").unwrap(), "[]");
    assert_eq!(run("pike.top", r#"["5"]"#).unwrap(), "[5]");
    assert_eq!(run("pike.top", r#"{"n":7}"#).unwrap(), "[7]");
    for bad in [r#"[0]"#, r#"["many"]"#, r#"[-1]"#, r#"[200001]"#] {
        let e = run("pike.top", bad).unwrap_err();
        assert!(
            e.contains(
                "argument 1 `n`: expected how many sources, a whole number from 1 to 200000"
            ),
            "{bad}: {e}"
        );
    }
    assert_eq!(
        usage("pike.top", signature("pike.top").unwrap()),
        "pike.top [n]"
    );
    assert_eq!(
        usage_for("subscriber.add").unwrap(),
        "subscriber.add username domain ha1 ha1_sha256"
    );
}

#[test]
fn dump_page_arguments() {
    assert_eq!(
        run("ul.dump_page", r#"["", 5000]"#).unwrap(),
        r#"["",5000]"#
    );
    assert_eq!(
        run("ul.dump_page", r#"["u09", "10", "brief"]"#).unwrap(),
        r#"["u09",10,"brief"]"#
    );
    assert_eq!(
        run("ul.dump_page", r#"{"cursor":"a","limit":1}"#).unwrap(),
        r#"["a",1]"#
    );
    assert_eq!(
        usage_for("ul.dump_page").unwrap(),
        "ul.dump_page cursor limit [brief]"
    );
}

#[test]
fn dump_prefix_arguments() {
    assert_eq!(
        run("ul.dump_prefix", r#"["al", "", 50]"#).unwrap(),
        r#"["al","",50]"#
    );
    assert_eq!(
        run("ul.dump_prefix", r#"[1001, "", "50", "brief"]"#).unwrap(),
        r#"["1001","",50,"brief"]"#
    );
    assert!(run("ul.dump_prefix", r#"["al", "", 0]"#)
        .unwrap_err()
        .contains("argument 3 `limit`"));
    assert!(run("ul.dump_prefix", r#"["al"]"#)
        .unwrap_err()
        .contains("argument 2 `cursor` is missing"));
    assert_eq!(
        usage_for("ul.dump_prefix").unwrap(),
        "ul.dump_prefix prefix cursor limit [brief]"
    );
}

#[test]
fn usage_lists_the_arguments() {
    let args = signature("ul.add").unwrap();
    assert_eq!(
        usage("ul.add", args),
        "ul.add table aor contact expires q path flags cflags methods"
    );
    assert_eq!(
        usage("ul.dump", signature("ul.dump").unwrap()),
        "ul.dump [brief]"
    );
    assert_eq!(
        usage(
            "stats.get_statistics",
            signature("stats.get_statistics").unwrap()
        ),
        "stats.get_statistics NAME…"
    );
}

#[test]
fn every_method_has_a_signature() {
    for name in crate::rpc::api::tests::method_names_for_tests() {
        assert!(
            signature(&name).is_some(),
            "{name} has no signature in params.rs"
        );
    }
}
