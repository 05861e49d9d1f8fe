//! `--change` for `import` and `commit`: Dockerfile instructions applied to
//! an image config's `config` object (pure). CMD, ENTRYPOINT, ENV, WORKDIR,
//! USER, EXPOSE, LABEL and STOPSIGNAL, in Dockerfile syntax: CMD and
//! ENTRYPOINT in JSON form (`["sh","-c","x"]`) or shell form (`x`, run as
//! `/bin/sh -c x`); ENV and LABEL as `k=v k2="v 2"` or ENV's legacy `k v`.

use serde_json::{json, Map, Value};

use crate::error::{Error, Result};

/// Apply every change, in order, to `config` (the image config's `config`).
/// As in a Dockerfile, an ENTRYPOINT resets the image's CMD unless the
/// same changes set a CMD too.
pub fn apply(config: &mut Map<String, Value>, changes: &[String]) -> Result<()> {
    for change in changes {
        apply_one(config, change).map_err(|e| e.within(format!("apply --change `{change}`")))?;
    }
    let sets =
        |word: &str| changes.iter().any(|c| c.split_whitespace().next().is_some_and(|w| w.eq_ignore_ascii_case(word)));
    if sets("ENTRYPOINT") && !sets("CMD") {
        config.remove("Cmd");
    }
    Ok(())
}

fn apply_one(config: &mut Map<String, Value>, change: &str) -> Result<()> {
    let (word, rest) = change.trim().split_once(char::is_whitespace).unwrap_or((change.trim(), ""));
    let rest = rest.trim();
    if rest.is_empty() {
        return Err(Error::new(word.to_string()).because("needs an argument"));
    }
    match word.to_ascii_uppercase().as_str() {
        "CMD" => set(config, "Cmd", command(rest)?),
        "ENTRYPOINT" => set(config, "Entrypoint", command(rest)?),
        "WORKDIR" => set(config, "WorkingDir", json!(rest)),
        "USER" => set(config, "User", json!(rest)),
        "STOPSIGNAL" => set(config, "StopSignal", json!(rest)),
        "ENV" => env(config, rest)?,
        "LABEL" => {
            let labels = object(config, "Labels");
            for (k, v) in pairs(rest)? {
                labels.insert(k, json!(v));
            }
        }
        "EXPOSE" => {
            let ports = object(config, "ExposedPorts");
            for p in rest.split_whitespace() {
                let port = if p.contains('/') { p.to_string() } else { format!("{p}/tcp") };
                ports.insert(port, json!({}));
            }
        }
        other => {
            return Err(Error::new(other.to_string())
                .because("unsupported instruction")
                .hint("use CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL or STOPSIGNAL"))
        }
    }
    Ok(())
}

fn set(config: &mut Map<String, Value>, key: &str, value: Value) {
    config.insert(key.to_string(), value);
}

fn object<'a>(config: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let slot = config.entry(key.to_string()).or_insert_with(|| json!({}));
    if !slot.is_object() {
        *slot = json!({});
    }
    slot.as_object_mut().expect("just made an object")
}

/// JSON form when it parses as an array of strings, else the shell form.
fn command(rest: &str) -> Result<Value> {
    if rest.starts_with('[') {
        if let Ok(list) = serde_json::from_str::<Vec<String>>(rest) {
            return Ok(json!(list));
        }
    }
    Ok(json!(["/bin/sh", "-c", rest]))
}

fn env(config: &mut Map<String, Value>, rest: &str) -> Result<()> {
    let first = rest.split_whitespace().next().unwrap_or_default();
    let new: Vec<(String, String)> = if first.contains('=') {
        pairs(rest)?
    } else {
        // Legacy form: `ENV key the rest of the line`.
        let (k, v) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        vec![(k.to_string(), v.trim().to_string())]
    };
    let list = config.entry("Env").or_insert_with(|| json!([]));
    if !list.is_array() {
        *list = json!([]);
    }
    let list = list.as_array_mut().expect("just made an array");
    for (k, v) in new {
        let prefix = format!("{k}=");
        list.retain(|e| !e.as_str().is_some_and(|s| s.starts_with(&prefix)));
        list.push(json!(format!("{k}={v}")));
    }
    Ok(())
}

/// `k=v k2="v 2" k3='x'` → pairs, with shell-like quoting and `\` escapes.
fn pairs(text: &str) -> Result<Vec<(String, String)>> {
    words(text)?
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(Error::new(format!("`{w}`")).because("expected KEY=VALUE")),
        })
        .collect()
}

fn words(text: &str) -> Result<Vec<String>> {
    let (mut out, mut cur, mut quote, mut in_word) = (Vec::new(), String::new(), None, false);
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                }
                in_word = false;
                continue;
            }
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (Some('\''), c) => cur.push(c),
            (_, '\\') => cur.extend(chars.next()),
            (_, c) => cur.push(c),
        }
        in_word = true;
    }
    if quote.is_some() {
        return Err(Error::new(format!("`{text}`")).because("unterminated quote"));
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entrypoint_resets_the_images_cmd_unless_one_is_given() {
        let base = || json!({"Cmd": ["/bin/sh"]}).as_object().unwrap().clone();
        let mut c = base();
        apply(&mut c, &["ENTRYPOINT [\"/app\"]".to_string()]).unwrap();
        assert_eq!((c.get("Entrypoint"), c.get("Cmd")), (Some(&json!(["/app"])), None));
        let mut c = base();
        apply(&mut c, &["entrypoint [\"/app\"]".to_string(), "CMD [\"-v\"]".to_string()]).unwrap();
        assert_eq!(c["Cmd"], json!(["-v"]));
        let mut c = base();
        apply(&mut c, &["ENV A=1".to_string()]).unwrap();
        assert_eq!(c["Cmd"], json!(["/bin/sh"]));
    }

    fn applied(changes: &[&str]) -> Result<Value> {
        let mut c = json!({"Env": ["PATH=/bin", "A=old"]}).as_object().unwrap().clone();
        apply(&mut c, &changes.iter().map(|s| s.to_string()).collect::<Vec<_>>())?;
        Ok(Value::Object(c))
    }

    #[test]
    fn each_instruction() {
        let c = applied(&[
            r#"CMD ["/bin/sh","-c","echo hi"]"#,
            "ENTRYPOINT /start --fast",
            r#"ENV A=new B="two words""#,
            "env C legacy form",
            "WORKDIR /srv",
            "USER app",
            "EXPOSE 80 53/udp",
            r#"LABEL version=1 "desc"='a b'"#,
            "STOPSIGNAL SIGINT",
        ])
        .unwrap();
        assert_eq!(c["Cmd"], json!(["/bin/sh", "-c", "echo hi"]));
        assert_eq!(c["Entrypoint"], json!(["/bin/sh", "-c", "/start --fast"]));
        assert_eq!(c["Env"], json!(["PATH=/bin", "A=new", "B=two words", "C=legacy form"]));
        assert_eq!((c["WorkingDir"].as_str(), c["User"].as_str()), (Some("/srv"), Some("app")));
        assert_eq!(c["ExposedPorts"], json!({"80/tcp": {}, "53/udp": {}}));
        assert_eq!(c["Labels"], json!({"version": "1", "desc": "a b"}));
        assert_eq!(c["StopSignal"], "SIGINT");
    }

    #[test]
    fn bad_changes_are_named() {
        let e = applied(&["RUN make"]).unwrap_err().to_string();
        assert!(e.starts_with("apply --change `RUN make`: RUN: unsupported instruction"), "{e}");
        assert!(applied(&["CMD"]).unwrap_err().to_string().contains("needs an argument"));
        assert!(applied(&["LABEL novalue"]).unwrap_err().to_string().contains("expected KEY=VALUE"));
        assert!(applied(&["LABEL a=\"open"]).unwrap_err().to_string().contains("unterminated quote"));
    }
}
