//! Docker's `--format` for listings and `inspect -f`: `table` (the
//! default view), `json` (one object per line), or a Go template rendered
//! by gtmpl over the row as Docker names its fields (each command builds
//! its rows as JSON objects from typed values). `table TEMPLATE` adds a
//! header (the template rendered over the column titles) and aligns the
//! tab-separated columns. Docker's extra functions are here: `json`,
//! `join`, `split`, `lower`, `upper`, `title`, `truncate`, `pad`.

use gtmpl::{Context, FuncError, Template, Value};
use serde_json::Value as Json;

use crate::cli::format::table;
use crate::error::{Error, Result};

/// How a listing prints.
pub enum Format {
    /// The command's own table (`table`, or no `--format`).
    Default,
    /// One JSON object per line.
    Json,
    /// A template per row, with a header and aligned columns for `table …`.
    Template { template: Template, table: bool },
}

impl Format {
    pub fn parse(text: Option<&str>) -> Result<Format> {
        match text.map(str::trim) {
            None | Some("") | Some("table") => Ok(Format::Default),
            Some("json") => Ok(Format::Json),
            Some(t) => {
                let (body, table) = match t.strip_prefix("table ") {
                    Some(body) => (body, true),
                    None => (t, false),
                };
                Ok(Format::Template { template: parse(body, t)?, table })
            }
        }
    }

    /// The rows as this format shows them; `titles` names each field's
    /// column as Docker does, `default` draws the command's own table.
    pub fn render(&self, rows: &[Json], titles: &[(&str, &str)], default: impl FnOnce() -> String) -> Result<String> {
        match self {
            Format::Default => Ok(default()),
            Format::Json => Ok(rows.iter().map(|r| format!("{r}\n")).collect()),
            Format::Template { template, table: false } => {
                rows.iter().map(|r| render(template, r).map(|line| line + "\n")).collect()
            }
            Format::Template { template, table: true } => {
                let header = titles.iter().map(|(k, v)| (k.to_string(), Json::from(*v))).collect();
                let header = render(template, &Json::Object(header))?;
                let lines: Vec<String> = rows.iter().map(|r| render(template, r)).collect::<Result<_>>()?;
                let cells: Vec<Vec<String>> =
                    lines.iter().map(|l| l.split('\t').map(str::to_string).collect()).collect();
                Ok(table(&header.split('\t').collect::<Vec<_>>(), &cells))
            }
        }
    }
}

/// A template as Docker reads it: `\t` and `\n` typed in a shell become
/// a tab and a newline; `original` is what the user gave, for errors.
pub fn parse(text: &str, original: &str) -> Result<Template> {
    let mut t = Template::default();
    t.add_funcs(&FUNCS);
    t.parse(text.replace("\\t", "\t").replace("\\n", "\n"))
        .map_err(|e| Error::new(format!("invalid --format \"{original}\"")).because(e))?;
    Ok(t)
}

/// One value through a template.
pub fn render(template: &Template, value: &Json) -> Result<String> {
    template
        .render(&Context::from(to_value(value)))
        .map_err(|e| Error::new(format!("render --format \"{}\"", template.text)).because(e))
}

fn to_value(v: &Json) -> Value {
    match v {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Value::from(u),
            (None, Some(i)) => Value::from(i),
            _ => Value::from(n.as_f64().unwrap_or_default()),
        },
        Json::String(s) => Value::String(s.clone()),
        Json::Array(a) => Value::Array(a.iter().map(to_value).collect()),
        Json::Object(m) => Value::Map(m.iter().map(|(k, v)| (k.clone(), to_value(v))).collect()),
    }
}

fn to_json(v: &Value) -> Json {
    match v {
        Value::NoValue | Value::Nil | Value::Function(_) => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::String(s) => Json::String(s.clone()),
        Value::Number(n) => {
            let text = n.to_string();
            serde_json::from_str(&text).unwrap_or(Json::String(text))
        }
        Value::Array(a) => Json::Array(a.iter().map(to_json).collect()),
        // Sorted keys, as Go's encoding/json writes maps.
        Value::Map(m) | Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            Json::Object(keys.into_iter().map(|k| (k.clone(), to_json(&m[k]))).collect())
        }
    }
}

const FUNCS: [(&str, gtmpl::Func); 8] = [
    ("json", json),
    ("join", join),
    ("split", split),
    ("lower", lower),
    ("upper", upper),
    ("title", title),
    ("truncate", truncate),
    ("pad", pad),
];

fn arg<'a>(args: &'a [Value], i: usize, name: &str, want: usize) -> std::result::Result<&'a Value, FuncError> {
    if args.len() != want {
        return Err(FuncError::ExactlyXArgs(name.into(), want));
    }
    Ok(&args[i])
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn number(v: &Value) -> std::result::Result<usize, FuncError> {
    match v {
        Value::Number(n) => n.as_u64().map(|n| n as usize).ok_or(FuncError::UnableToConvertFromValue),
        _ => Err(FuncError::UnableToConvertFromValue),
    }
}

fn json(args: &[Value]) -> std::result::Result<Value, FuncError> {
    Ok(Value::String(to_json(arg(args, 0, "json", 1)?).to_string()))
}

fn join(args: &[Value]) -> std::result::Result<Value, FuncError> {
    let sep = text(arg(args, 1, "join", 2)?);
    match &args[0] {
        Value::Array(items) => Ok(Value::String(items.iter().map(text).collect::<Vec<_>>().join(&sep))),
        other => Ok(Value::String(text(other))),
    }
}

fn split(args: &[Value]) -> std::result::Result<Value, FuncError> {
    let sep = text(arg(args, 1, "split", 2)?);
    Ok(Value::Array(text(&args[0]).split(sep.as_str()).map(|s| Value::String(s.into())).collect()))
}

fn lower(args: &[Value]) -> std::result::Result<Value, FuncError> {
    Ok(Value::String(text(arg(args, 0, "lower", 1)?).to_lowercase()))
}

fn upper(args: &[Value]) -> std::result::Result<Value, FuncError> {
    Ok(Value::String(text(arg(args, 0, "upper", 1)?).to_uppercase()))
}

fn title(args: &[Value]) -> std::result::Result<Value, FuncError> {
    let words = text(arg(args, 0, "title", 1)?);
    let titled = words.split(' ').map(|w| {
        let mut c = w.chars();
        c.next().map(|f| f.to_uppercase().chain(c).collect::<String>()).unwrap_or_default()
    });
    Ok(Value::String(titled.collect::<Vec<_>>().join(" ")))
}

/// `truncate TEXT N`: at most N characters.
fn truncate(args: &[Value]) -> std::result::Result<Value, FuncError> {
    let n = number(arg(args, 1, "truncate", 2)?)?;
    Ok(Value::String(text(&args[0]).chars().take(n).collect()))
}

/// `pad TEXT LEFT RIGHT`: spaces on either side.
fn pad(args: &[Value]) -> std::result::Result<Value, FuncError> {
    let right = number(arg(args, 2, "pad", 3)?)?;
    let left = number(&args[1])?;
    Ok(Value::String(format!("{}{}{}", " ".repeat(left), text(&args[0]), " ".repeat(right))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(template: &str, v: Json) -> String {
        render(&parse(template, template).unwrap(), &v).unwrap()
    }

    #[test]
    fn fields_functions_and_ranges_as_docker_writes_them() {
        let c =
            json!({"ID": "abc", "Names": "web", "Ports": ["80/tcp", "443/tcp"], "State": {"Running": true, "Pid": 42}});
        assert_eq!(one("{{.ID}}\\t{{.Names}}", c.clone()), "abc\tweb");
        assert_eq!(one("{{.State.Running}} {{.State.Pid}}", c.clone()), "true 42");
        assert_eq!(one("{{range .Ports}}[{{.}}]{{end}}", c.clone()), "[80/tcp][443/tcp]");
        assert_eq!(one("{{join .Ports \",\"}}", c.clone()), "80/tcp,443/tcp");
        assert_eq!(one("{{json .State}}", c.clone()), r#"{"Pid":42,"Running":true}"#);
        assert_eq!(
            one("{{upper .Names}} {{title \"hello world\"}} {{truncate .ID 2}}", c.clone()),
            "WEB Hello World ab"
        );
        assert_eq!(one("{{if .State.Running}}up{{else}}down{{end}}", c.clone()), "up");
        assert_eq!(one("{{index (split \"a:b\" \":\") 1}}|{{pad .ID 1 2}}|", c), "b| abc  |");
    }

    #[test]
    fn formats_list_json_templates_and_tables_with_headers() {
        let rows = vec![json!({"ID": "a1", "Name": "one"}), json!({"ID": "b22", "Name": "two"})];
        let titles = [("ID", "CONTAINER ID"), ("Name", "NAMES")];
        let show = |f: &str| Format::parse(Some(f)).unwrap().render(&rows, &titles, || "own table\n".into()).unwrap();
        assert_eq!(show("table"), "own table\n");
        assert_eq!(show("json"), "{\"ID\":\"a1\",\"Name\":\"one\"}\n{\"ID\":\"b22\",\"Name\":\"two\"}\n");
        assert_eq!(show("{{.Name}}"), "one\ntwo\n");
        assert_eq!(show("table {{.ID}}\\t{{.Name}}"), "CONTAINER ID   NAMES\na1             one\nb22            two\n");
    }

    #[test]
    fn a_bad_template_is_one_line_naming_it() {
        let e = Format::parse(Some("{{.ID")).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.starts_with("invalid --format \"{{.ID\": "), "{e}");
        assert!(!e.contains('\n'), "{e}");
        let e = Format::parse(Some("{{nosuch .ID}}")).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.starts_with("invalid --format \"{{nosuch .ID}}\""), "{e}");
    }
}
