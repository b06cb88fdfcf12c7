//! The registry format: loading, validation errors, argument binding and
//! rendering.

use std::path::Path;

use mechops_std::registry::{
    ArgError, ArgType, MAX_ARG_BYTES, MAX_EXEC_BYTES, Registry, RegistryError, Rendered,
    ScriptKind, parse_cli_arg,
};
use serde_json::{Map, Value, json};

const ISSUE_EXAMPLE: &str = r#"{
  "version": 1,
  "scripts": [
    {
      "id": "resize",
      "name": "Resize images",
      "description": "Resizes the images of a folder",
      "tags": ["media"],
      "kind": "command",
      "command": ["python3", "scripts/resize.py", "--width", "{width}", "{folder}"],
      "env": {"QUALITY": "high"},
      "workdir": ".",
      "timeout_ms": 60000,
      "arguments": {
        "width": {"type": "integer", "required": false, "default": 800, "description": "target width"},
        "folder": {"type": "string", "required": true, "description": "folder to process"}
      }
    },
    {"id": "status-api", "kind": "http", "method": "GET", "url": "http://127.0.0.1:9000/status/{service}",
     "headers": {}, "body": null, "timeout_ms": 5000, "arguments": {"service": {"type": "string", "required": true}}},
    {"id": "count-users", "kind": "sql", "pool": "main", "query": "SELECT count(*) FROM users WHERE team = $1",
     "params": ["{team}"], "timeout_ms": 5000, "arguments": {"team": {"type": "string", "required": true}}}
  ],
  "pools": {"main": {"url": "postgres://app@127.0.0.1:5432/app", "min_connections": 1, "max_connections": 20}}
}"#;

fn base() -> &'static Path {
    Path::new("/srv/reg")
}

fn parse(text: &str) -> Result<Registry, RegistryError> {
    Registry::parse(text, base())
}

fn err(text: &str) -> String {
    parse(text).expect_err("must be refused").to_string()
}

fn args(v: Value) -> Map<String, Value> {
    v.as_object().expect("an object").clone()
}

/// A registry of one script entry (as JSON text) and optional pools.
fn one(entry: &str) -> String {
    format!(
        r#"{{"version": 1, "scripts": [{entry}], "pools": {{"main": {{"url": "postgres://x"}}}}}}"#
    )
}

#[test]
fn the_issue_example_loads() {
    let reg = parse(ISSUE_EXAMPLE).unwrap();
    assert_eq!(reg.scripts().len(), 3);
    assert_eq!(reg.base_dir(), base());
    let resize = reg.get("resize").unwrap();
    assert_eq!(resize.name, "Resize images");
    assert_eq!(resize.tags, ["media"]);
    assert_eq!(resize.timeout, Some(core::time::Duration::from_secs(60)));
    assert_eq!(resize.arguments["width"].ty, ArgType::Integer);
    assert_eq!(resize.arguments["width"].default, Some(json!(800)));
    assert!(matches!(resize.kind, ScriptKind::Command(_)));
    assert!(matches!(
        reg.get("status-api").unwrap().kind,
        ScriptKind::Http(_)
    ));
    assert!(matches!(
        reg.get("count-users").unwrap().kind,
        ScriptKind::Sql(_)
    ));
    let pool = &reg.pools()["main"];
    assert_eq!((pool.min_connections, pool.max_connections), (1, 20));
    assert!(reg.get("nope").is_none());
}

#[test]
fn unknown_optional_fields_are_kept() {
    let reg = parse(&one(
        r#"{"id": "a", "kind": "command", "command": ["true"], "owner": "ops", "retries": 2}"#,
    ))
    .unwrap();
    let s = reg.get("a").unwrap();
    assert_eq!(s.extra["owner"], json!("ops"));
    assert_eq!(s.name, "a", "the name defaults to the id");
    let shown = serde_json::to_value(&**s).unwrap();
    assert_eq!(shown["kind"], json!("command"));
    assert_eq!(shown["command"], json!(["true"]));
    assert_eq!(shown["owner"], json!("ops"));
}

#[test]
fn syntax_errors_give_line_and_column() {
    let e =
        parse("{\n  \"version\": 1,\n  \"scripts\": [\n    {\"id\": \"a\",,}\n  ]\n}").unwrap_err();
    match e {
        RegistryError::Syntax { line, column, .. } => assert_eq!((line, column), (4, 16)),
        other => panic!("{other:?}"),
    }
    let text = err("[1, 2]");
    assert!(
        text.starts_with("line 1, column 1: expected a registry"),
        "{text}"
    );
    let text = err("\n  7");
    assert!(
        text.starts_with("line 2, column 3: expected a registry"),
        "{text}"
    );
    assert!(err("").contains("line 1"));
}

#[test]
fn semantic_errors_name_the_entry_and_field() {
    let text = ISSUE_EXAMPLE.replace(r#""pool": "main""#, r#""pool": "other""#);
    let e = err(&text);
    assert!(
        e.starts_with(r#"scripts[2] "count-users" (line 21): field "pool": no pool named "other""#),
        "{e}"
    );
    let cases: &[(&str, &str)] = &[
        (
            r#"{"id": "a", "kind": "command", "command": []}"#,
            r#"field "command": empty"#,
        ),
        (
            r#"{"id": "a", "kind": "command", "command": [""]}"#,
            r#"field "command[0]": the program is empty"#,
        ),
        (
            r#"{"id": "a", "kind": "command", "command": ["ls", "{dir}"]}"#,
            r#"field "command[1]": placeholder {dir} names no declared argument"#,
        ),
        (
            r#"{"id": "a", "kind": "command", "command": ["ls", 3]}"#,
            r#"field "command[1]": expected a string, got an integer"#,
        ),
        (
            r#"{"id": "a", "kind": "command", "command": ["{p}"], "arguments": {"p": {"type": "string"}}}"#,
            r#"field "command[0]": the program may not come from an argument"#,
        ),
        (
            r#"{"id": "a", "kind": "http", "method": "FETCH", "url": "http://x/"}"#,
            r#"field "method": unknown method "FETCH""#,
        ),
        (
            r#"{"id": "a", "kind": "http", "url": "ftp://x/"}"#,
            r#"field "url": must start with http"#,
        ),
        (
            r#"{"id": "a", "kind": "http", "url": "http://{h}/", "arguments": {"h": {"type": "string"}}}"#,
            r#"field "url": the host may not come from an argument"#,
        ),
        (
            r#"{"id": "a", "kind": "http", "url": "http://x/", "headers": {"X-A": "{tok}"}}"#,
            r#"field "headers.X-A": placeholder {tok}"#,
        ),
        (
            r#"{"id": "a", "kind": "http", "url": "http://x/", "body": {"n": ["{n}"]}}"#,
            r#"field "body.n[0]": placeholder {n}"#,
        ),
        (
            r#"{"id": "a", "kind": "sql", "pool": "main", "query": " "}"#,
            r#"field "query": empty"#,
        ),
        (
            r#"{"id": "a", "kind": "sql", "pool": "main", "query": "select $1", "params": ["{t}"]}"#,
            r#"field "params[0]": placeholder {t}"#,
        ),
        (
            r#"{"id": "a", "kind": "shell", "command": ["ls"]}"#,
            r#"field "kind": unknown kind "shell""#,
        ),
        (
            r#"{"id": "a", "command": ["ls"]}"#,
            r#"field "kind": missing"#,
        ),
        (
            r#"{"id": "a b", "kind": "command", "command": ["ls"]}"#,
            r#"field "id": "a b" is not a valid id"#,
        ),
        (
            r#"{"id": 7, "kind": "command", "command": ["ls"]}"#,
            r#"field "id": expected a string, got an integer"#,
        ),
        (
            r#"{"kind": "command", "command": ["ls"]}"#,
            r#"field "id": missing"#,
        ),
        (r#""just text""#, "an entry must be an object, got a string"),
        (
            r#"{"id": "a", "kind": "command", "command": ["ls"], "timeout_ms": 0}"#,
            r#"field "timeout_ms": expected a positive integer"#,
        ),
        (
            r#"{"id": "a", "kind": "command", "command": ["ls"], "timeout_ms": 1.5}"#,
            r#"field "timeout_ms""#,
        ),
        (
            r#"{"id": "a", "kind": "command", "command": ["ls"], "arguments": {"w": {"type": "integer", "default": "800"}}}"#,
            r#"field "arguments.w.default": expected integer, got a string"#,
        ),
        (
            r#"{"id": "a", "kind": "command", "command": ["ls"], "arguments": {"w": {"type": "int"}}}"#,
            r#"field "arguments.w.type": unknown type "int""#,
        ),
        (
            r#"{"id": "a", "kind": "command", "command": ["ls"], "arguments": {"w": {}}}"#,
            r#"field "arguments.w.type": missing"#,
        ),
        (
            r#"{"id": "a", "kind": "command", "command": ["ls"], "arguments": {"w": {"type": "string", "required": "yes"}}}"#,
            r#"field "arguments.w.required": expected a boolean"#,
        ),
        (
            r#"{"id": "a", "kind": "command", "command": ["ls"], "arguments": {"9w": {"type": "string"}}}"#,
            r#"field "arguments.9w": an argument name"#,
        ),
        (
            r#"{"id": "a", "kind": "command", "command": ["ls"], "tags": ["x", 1]}"#,
            r#"field "tags[1]": expected a string"#,
        ),
        (
            r#"{"id": "a", "kind": "command", "command": ["ls"], "env": {"A": 1}}"#,
            r#"field "env.A": expected a string"#,
        ),
        (
            r#"{"id": "a", "kind": "command", "command": ["ls"], "workdir": ""}"#,
            r#"field "workdir""#,
        ),
    ];
    for (entry, want) in cases {
        let e = err(&one(entry));
        assert!(e.starts_with("scripts[0]"), "{entry}: {e}");
        assert!(e.contains(want), "{entry}:\n  got  {e}\n  want {want}");
    }
}

#[test]
fn top_level_and_pool_errors() {
    assert!(err(r#"{"scripts": []}"#).contains(r#"field "version": missing"#));
    assert!(err(r#"{"version": 2, "scripts": []}"#).contains("unsupported version 2"));
    assert!(err(r#"{"version": 1}"#).contains(r#"field "scripts": missing"#));
    assert!(err(r#"{"version": 1, "scripts": {}}"#).contains("line 1"));
    let e = err(r#"{"version": 1, "scripts": [], "pools": {"db": {"url": ""}}}"#);
    assert!(e.starts_with(r#"pools "db": field "url""#), "{e}");
    let e = err(
        r#"{"version": 1, "scripts": [], "pools": {"db": {"url": "postgres://x", "min_connections": 5, "max_connections": 2}}}"#,
    );
    assert!(
        e.contains(r#"field "min_connections": 5 is more than"#),
        "{e}"
    );
    let e = err(
        r#"{"version": 1, "scripts": [], "pools": {"db": {"url": "p", "max_connections": 0}}}"#,
    );
    assert!(e.contains("at least 1"), "{e}");
    let e = err(&one(
        r#"{"id": "a", "kind": "command", "command": ["ls"], "id": "b"}"#,
    ));
    assert!(
        e.contains(r#"field "id": the entry has more than one "id""#),
        "{e}"
    );
    let e = err(&one(
        r#"{"kind": "command", "id": 1, "command": ["ls"], "id": "b"}"#,
    ));
    assert!(e.contains(r#"field "id""#), "{e}");
    // An empty registry is valid.
    assert!(
        parse(r#"{"version": 1, "scripts": []}"#)
            .unwrap()
            .scripts()
            .is_empty()
    );
}

#[test]
fn duplicate_ids_are_refused() {
    let e = err(r#"{"version": 1, "scripts": [
        {"id": "a", "kind": "command", "command": ["ls"]},
        {"id": "b", "kind": "command", "command": ["ls"]},
        {"id": "a", "kind": "command", "command": ["ls"]}]}"#);
    assert!(
        e.starts_with(
            r#"scripts[2] "a" (line 4): field "id": duplicate id "a", already used by scripts[0]"#
        ),
        "{e}"
    );
}

#[test]
fn files_over_the_limit_are_refused() {
    let dir = std::env::temp_dir().join(format!("mechops-reg-big-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("registry.json");
    let f = std::fs::File::create(&path).unwrap();
    f.set_len(mechops_std::registry::MAX_REGISTRY_BYTES + 1)
        .unwrap();
    let e = Registry::load(&path).unwrap_err();
    assert!(matches!(e, RegistryError::TooLarge { .. }), "{e}");
    let e = Registry::load(dir.join("missing.json")).unwrap_err();
    assert!(e.to_string().contains("cannot read registry"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn load_resolves_against_the_files_folder() {
    let dir = std::env::temp_dir().join(format!("mechops-reg-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("registry.json");
    std::fs::write(&path, ISSUE_EXAMPLE).unwrap();
    let reg = Registry::load(&path).unwrap();
    assert_eq!(reg.base_dir(), dir);
    let s = reg.get("resize").unwrap();
    let bound = s.bind(&args(json!({"folder": "pics"}))).unwrap();
    let Rendered::Command(c) = s.render(&bound, reg.base_dir()).unwrap() else {
        panic!("a command");
    };
    assert_eq!(c.program, Path::new("python3"), "bare names stay for PATH");
    // Arguments are not paths to resolve: the program runs in `workdir`.
    assert_eq!(c.args, ["scripts/resize.py", "--width", "800", "pics"]);
    assert_eq!(c.workdir, dir.join("."));
    assert_eq!(c.env["QUALITY"], "high");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn relative_program_paths_resolve_against_the_folder() {
    let reg = parse(&one(
        r#"{"id": "a", "kind": "command", "command": ["scripts/x.sh", "{v}"], "workdir": "work",
            "arguments": {"v": {"type": "string"}}}"#,
    ))
    .unwrap();
    let s = reg.get("a").unwrap();
    let Rendered::Command(c) = s.render(&s.bind(&Map::new()).unwrap(), base()).unwrap() else {
        panic!()
    };
    assert_eq!(c.program, base().join("scripts/x.sh"));
    assert_eq!(c.workdir, base().join("work"));
    assert!(
        c.args.is_empty(),
        "an absent optional lone placeholder passes nothing"
    );
}

#[test]
fn binding_checks_types_required_defaults_and_unknowns() {
    let reg = parse(ISSUE_EXAMPLE).unwrap();
    let s = reg.get("resize").unwrap();
    assert_eq!(
        s.bind(&Map::new()).unwrap_err(),
        ArgError::Missing {
            name: "folder".into()
        }
    );
    let e = s
        .bind(&args(json!({"folder": "x", "width": "wide"})))
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with(r#"argument "width": expected integer, got a string"#),
        "{e}"
    );
    let e = s
        .bind(&args(json!({"folder": "x", "width": 1.5})))
        .unwrap_err();
    assert!(matches!(e, ArgError::Type { .. }), "{e}");
    let e = s
        .bind(&args(json!({"folder": "x", "height": 3})))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"unknown argument "height" (declared: folder, width)"#
    );
    let b = s.bind(&args(json!({"folder": "x"}))).unwrap();
    assert_eq!(b.get("width"), Some(&json!(800)));
    let b = s.bind(&args(json!({"folder": "x", "width": 10}))).unwrap();
    assert_eq!(b.get("width"), Some(&json!(10)));
    assert_eq!(b.len(), 2);
    let e = s.bind(&args(json!({"folder": null}))).unwrap_err();
    assert!(e.to_string().contains("expected string, got null"), "{e}");
}

#[test]
fn cli_values_are_read_by_type() {
    let reg = parse(&one(
        r#"{"id": "a", "kind": "command", "command": ["ls"], "arguments": {
            "s": {"type": "string"}, "i": {"type": "integer"}, "n": {"type": "number"},
            "b": {"type": "boolean"}, "j": {"type": "json"}}}"#,
    ))
    .unwrap();
    let s = reg.get("a").unwrap();
    assert_eq!(
        parse_cli_arg(s, "s=a=b").unwrap(),
        ("s".into(), json!("a=b"))
    );
    assert_eq!(parse_cli_arg(s, "i=-3").unwrap().1, json!(-3));
    assert_eq!(
        parse_cli_arg(s, "i=18446744073709551615").unwrap().1,
        json!(u64::MAX)
    );
    assert_eq!(parse_cli_arg(s, "n=2.5").unwrap().1, json!(2.5));
    assert_eq!(parse_cli_arg(s, "n=4").unwrap().1, json!(4));
    assert_eq!(parse_cli_arg(s, "b=true").unwrap().1, json!(true));
    assert_eq!(
        parse_cli_arg(s, "j={\"k\":[1]}").unwrap().1,
        json!({"k": [1]})
    );
    let e = parse_cli_arg(s, "i=1.5").unwrap_err();
    assert_eq!(e.to_string(), r#"argument "i": "1.5" is not an integer"#);
    assert!(parse_cli_arg(s, "n=NaN").is_err());
    assert!(parse_cli_arg(s, "n=inf").is_err());
    assert!(
        parse_cli_arg(s, "b=yes")
            .unwrap_err()
            .to_string()
            .contains("true or false")
    );
    assert!(
        parse_cli_arg(s, "j={")
            .unwrap_err()
            .to_string()
            .contains("not valid JSON")
    );
    assert!(matches!(
        parse_cli_arg(s, "zz=1"),
        Err(ArgError::Unknown { .. })
    ));
    assert!(
        parse_cli_arg(s, "novalue")
            .unwrap_err()
            .to_string()
            .contains("NAME=VALUE")
    );
}

#[test]
fn command_values_are_one_argument_each_never_split() {
    let reg = parse(&one(
        r#"{"id": "a", "kind": "command",
            "command": ["prog", "{x}", "--opt={x}", "{n}", "{j}", "pre {x} post"],
            "env": {"V": "v={x}"},
            "arguments": {"x": {"type": "string", "required": true}, "n": {"type": "number", "default": 1.5},
                          "j": {"type": "json", "default": {"a": [1, "b"]}}}}"#,
    ))
    .unwrap();
    let s = reg.get("a").unwrap();
    let nasty = "a b; rm -rf / $(reboot) `x` | --help -- \"q\" 'q' *";
    let b = s.bind(&args(json!({"x": nasty}))).unwrap();
    let Rendered::Command(c) = s.render(&b, base()).unwrap() else {
        panic!()
    };
    assert_eq!(c.program, Path::new("prog"));
    assert_eq!(
        c.args,
        [
            nasty.to_owned(),
            format!("--opt={nasty}"),
            "1.5".to_owned(),
            r#"{"a":[1,"b"]}"#.to_owned(),
            format!("pre {nasty} post"),
        ]
    );
    assert_eq!(c.env["V"], format!("v={nasty}"));
    let b = s.bind(&args(json!({"x": "a\0b"}))).unwrap();
    let e = s.render(&b, base()).unwrap_err();
    assert!(e.to_string().contains("NUL"), "{e}");
}

#[test]
fn command_strings_over_the_kernel_limits_are_refused_naming_the_argument() {
    let reg = parse(&one(r#"{"id": "a", "kind": "command",
            "command": ["prog", "{small}", "--data={big}"],
            "env": {"E": "{envv}"},
            "arguments": {"small": {"type": "string", "default": "s"},
                          "big": {"type": "string", "default": ""},
                          "envv": {"type": "string", "default": ""}}}"#))
    .unwrap();
    let s = reg.get("a").unwrap();
    let render = |v: Value| {
        let b = s.bind(&args(v)).unwrap();
        s.render(&b, base()).map(drop).map_err(|e| e.to_string())
    };
    // `--data=` is 7 bytes: the largest value that fits, and one more.
    let fits = "x".repeat(MAX_ARG_BYTES - 7);
    render(json!({"big": fits})).unwrap();
    let e = render(json!({"big": format!("{fits}x")})).unwrap_err();
    assert!(
        e.starts_with("argument \"big\": makes program argument 2 "),
        "{e}"
    );
    assert!(e.contains(&MAX_ARG_BYTES.to_string()), "{e}");
    // An environment string counts its name and `=`.
    let e = render(json!({"envv": "y".repeat(MAX_ARG_BYTES - 1)})).unwrap_err();
    assert!(
        e.starts_with("argument \"envv\": makes environment variable E "),
        "{e}"
    );
    render(json!({"envv": "y".repeat(MAX_ARG_BYTES - 2)})).unwrap();
    // Each string fits, all together do not: the longest value is named.
    let many = parse(&one(&format!(
        r#"{{"id": "m", "kind": "command", "command": ["prog"{}, "{{w}}"],
            "arguments": {{"v": {{"type": "string", "required": true}},
                          "w": {{"type": "string", "required": true}}}}}}"#,
        ", \"{v}\"".repeat(8)
    )))
    .unwrap();
    let m = many.get("m").unwrap();
    let b = m
        .bind(&args(
            json!({"v": "v".repeat(120_000), "w": "w".repeat(MAX_ARG_BYTES)}),
        ))
        .unwrap();
    let e = m.render(&b, base()).unwrap_err().to_string();
    assert!(
        e.starts_with("argument \"w\": makes the command's arguments and environment "),
        "{e}"
    );
    assert!(e.contains(&format!("at most {MAX_EXEC_BYTES}")), "{e}");
}

#[test]
fn http_urls_are_percent_encoded_and_headers_checked() {
    let reg = parse(&one(
        r#"{"id": "a", "kind": "http", "method": "POST", "url": "http://127.0.0.1:9/s/{svc}?q={q}",
            "headers": {"X-Team": "{team}"}, "timeout_ms": 10,
            "body": {"svc": "{svc}", "count": "{n}", "text": "n={n}", "fixed": [true, null]},
            "arguments": {"svc": {"type": "string", "required": true}, "q": {"type": "string", "default": "a b&c=d"},
                          "team": {"type": "string", "default": "ops"}, "n": {"type": "integer", "default": 3}}}"#,
    ))
    .unwrap();
    let s = reg.get("a").unwrap();
    let b = s.bind(&args(json!({"svc": "../admin/é"}))).unwrap();
    let Rendered::Http(h) = s.render(&b, base()).unwrap() else {
        panic!()
    };
    assert_eq!(h.method, "POST");
    assert_eq!(
        h.url,
        "http://127.0.0.1:9/s/..%2Fadmin%2F%C3%A9?q=a%20b%26c%3Dd"
    );
    assert_eq!(
        h.headers,
        [
            ("X-Team".to_owned(), "ops".to_owned()),
            ("content-type".to_owned(), "application/json".to_owned())
        ]
    );
    let body: Value = serde_json::from_str(h.body.as_deref().unwrap()).unwrap();
    assert_eq!(
        body,
        json!({"svc": "../admin/é", "count": 3, "text": "n=3", "fixed": [true, null]})
    );
    assert_eq!(h.timeout, Some(core::time::Duration::from_millis(10)));
    let b = s
        .bind(&args(json!({"svc": "x", "team": "a\r\nX-Evil: 1"})))
        .unwrap();
    assert!(
        s.render(&b, base())
            .unwrap_err()
            .to_string()
            .contains("line break")
    );
}

#[test]
fn http_text_bodies_are_substituted() {
    let reg = parse(&one(
        r#"{"id": "a", "kind": "http", "method": "PUT", "url": "https://h/x", "body": "name={n}",
            "headers": {"Content-Type": "text/plain"},
            "arguments": {"n": {"type": "string", "required": true}}}"#,
    ))
    .unwrap();
    let s = reg.get("a").unwrap();
    let Rendered::Http(h) = s
        .render(&s.bind(&args(json!({"n": "{x}"}))).unwrap(), base())
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(
        h.body.as_deref(),
        Some("name={x}"),
        "values are not templates themselves"
    );
    assert_eq!(h.headers.len(), 1);
}

#[test]
fn sql_params_are_typed_and_never_in_the_query() {
    let reg = parse(&one(
        r#"{"id": "a", "kind": "sql", "pool": "main", "query": "SELECT $1, $2, $3, $4",
            "params": ["{team}", "{limit}", "team-{team}", 7],
            "arguments": {"team": {"type": "string", "required": true}, "limit": {"type": "integer", "default": 10}}}"#,
    ))
    .unwrap();
    let s = reg.get("a").unwrap();
    let b = s
        .bind(&args(json!({"team": "x'; DROP TABLE users; --"})))
        .unwrap();
    let Rendered::Sql(q) = s.render(&b, base()).unwrap() else {
        panic!()
    };
    assert_eq!(q.pool, "main");
    assert_eq!(q.query, "SELECT $1, $2, $3, $4");
    assert_eq!(
        q.params,
        [
            json!("x'; DROP TABLE users; --"),
            json!(10),
            json!("team-x'; DROP TABLE users; --"),
            json!(7)
        ]
    );
}

#[test]
fn load_script_parses_one_entry() {
    let dir = std::env::temp_dir().join(format!("mechops-reg-one-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("registry.json");
    std::fs::write(&path, ISSUE_EXAMPLE).unwrap();
    let s = Registry::load_script(&path, "count-users")
        .unwrap()
        .unwrap();
    assert!(matches!(s.kind, ScriptKind::Sql(_)));
    assert!(Registry::load_script(&path, "nope").unwrap().is_none());
    // The entry asked for is validated; a file-wide rule still holds.
    std::fs::write(
        &path,
        ISSUE_EXAMPLE.replace(r#""pool": "main""#, r#""pool": "x""#),
    )
    .unwrap();
    assert!(Registry::load_script(&path, "count-users").is_err());
    assert!(Registry::load_script(&path, "resize").unwrap().is_some());
    std::fs::write(
        &path,
        ISSUE_EXAMPLE.replace(r#""id": "status-api""#, r#""id": "resize""#),
    )
    .unwrap();
    assert!(matches!(
        Registry::load_script(&path, "count-users"),
        Err(RegistryError::DuplicateId { .. })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_scripts_json_form_parses_back_to_it() {
    let seed = include_str!("../../../fuzz/seeds/registry_parse/example.json");
    for text in [ISSUE_EXAMPLE, seed] {
        let reg = parse(text).unwrap();
        for s in reg.scripts() {
            let json = serde_json::to_string(&**s).unwrap();
            let again = mechops_std::registry::Script::parse_entry(&json, reg.pools()).unwrap();
            assert_eq!(&again, &**s, "{json}");
        }
    }
}
