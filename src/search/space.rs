//! The search space: one [`Axis`] per `[grid]` key, each a list of values or a range.
//!
//! Samplers work on an internal real line per axis (the value, its log for `log = true`, the
//! index of a categorical value) and hand back TOML values, so the config layer applies a
//! sampled point exactly as it applies a grid combination.

use toml::Value;

/// A point of the space: one `(key, value)` per axis, in axis order. Integers are
/// [`Value::Integer`], floats [`Value::Float`], categorical values as written in `[grid]`.
pub type Point = Vec<(String, Value)>;

/// The values one axis may take.
#[derive(Debug, Clone, PartialEq)]
pub enum Domain {
    /// A list in `[grid]`: one of these values, unordered.
    Categorical(Vec<Value>),
    /// `{ min, max }` or `{ min, max, log = true }`: a real in `[min, max]`.
    Float { min: f64, max: f64, log: bool },
    /// `{ min, max, int = true }` (optionally `log = true`): an integer in `[min, max]`.
    Int { min: i64, max: i64, log: bool },
}

/// One dimension of the space: a dotted config key and its domain.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    pub key: String,
    pub domain: Domain,
}

/// The axes of a search, in `[grid]` order.
#[derive(Debug, Clone, PartialEq)]
pub struct Space {
    pub axes: Vec<Axis>,
}

const RANGE_KEYS: &[&str] = &["min", "max", "log", "int"];

impl Domain {
    /// Parses a `[grid]` value: a non-empty list, or a range table with `min`, `max` and the
    /// optional flags `log` and `int`. The error is the message only; the caller adds the
    /// file, line and key.
    pub fn parse(key: &str, value: &Value) -> Result<Domain, String> {
        match value {
            Value::Array(values) if values.is_empty() => Err(format!("`{key}` has no values")),
            Value::Array(values) => Ok(Domain::Categorical(values.clone())),
            Value::Table(table) => parse_range(key, table),
            other => Err(format!(
                "`{key}` must be a list of values or a range table \
                 {{ min = .., max = .., log = true, int = true }}, not {}",
                other.type_str()
            )),
        }
    }

    /// A range (`Float` or `Int`) rather than a list; ranges need random or tpe search.
    pub fn is_range(&self) -> bool {
        !matches!(self, Domain::Categorical(_))
    }

    /// The internal coordinate of `value`: the index of a categorical value, the number (its
    /// log for a log axis). `None` when the value is outside the domain (for example, a
    /// trial from before the space changed).
    pub fn to_internal(&self, value: &Value) -> Option<f64> {
        match self {
            Domain::Categorical(choices) => {
                choices.iter().position(|c| c == value).map(|i| i as f64)
            }
            Domain::Float { min, max, log } => {
                let x = as_f64(value)?;
                (*min <= x && x <= *max).then(|| if *log { x.ln() } else { x })
            }
            Domain::Int { min, max, log } => {
                let x = as_f64(value)?;
                let inside = *min as f64 <= x && x <= *max as f64 && x.fract() == 0.0;
                inside.then(|| if *log { x.ln() } else { x })
            }
        }
    }

    /// The value at internal coordinate `x`: rounded (integers, categorical indices) and
    /// clamped into the domain, so a value always lies inside it.
    pub fn from_internal(&self, x: f64) -> Value {
        match self {
            Domain::Categorical(choices) => {
                let index = (x.round().max(0.0) as usize).min(choices.len() - 1);
                choices[index].clone()
            }
            Domain::Float { min, max, log } => {
                let value = if *log { x.exp() } else { x };
                Value::Float(value.clamp(*min, *max))
            }
            Domain::Int { min, max, log } => {
                let value = if *log { x.exp() } else { x };
                Value::Integer((value.round() as i64).clamp(*min, *max))
            }
        }
    }

    /// The line a numeric axis's kernels live on: `[min, max]` (logs for a log axis), and for
    /// integers `[min - 1/2, max + 1/2]` (or its logs), so each integer owns a cell of it and
    /// the end values are as likely as the others, as in Optuna.
    pub(crate) fn kernel_line(&self) -> Option<(f64, f64)> {
        let ln_if = |log: bool, x: f64| if log { x.ln() } else { x };
        match self {
            Domain::Categorical(_) => None,
            Domain::Float { min, max, log } => Some((ln_if(*log, *min), ln_if(*log, *max))),
            Domain::Int { min, max, log } => {
                Some((ln_if(*log, *min as f64 - 0.5), ln_if(*log, *max as f64 + 0.5)))
            }
        }
    }

    /// The internal coordinates of `min` and `max` of a numeric axis.
    pub(crate) fn internal_range(&self) -> Option<(f64, f64)> {
        let ln_if = |log: bool, x: f64| if log { x.ln() } else { x };
        match self {
            Domain::Categorical(_) => None,
            Domain::Float { min, max, log } => Some((ln_if(*log, *min), ln_if(*log, *max))),
            Domain::Int { min, max, log } => {
                Some((ln_if(*log, *min as f64), ln_if(*log, *max as f64)))
            }
        }
    }
}

impl Space {
    /// A space from axes; keys must be distinct and there must be at least one axis.
    pub fn new(axes: Vec<Axis>) -> Result<Space, String> {
        if axes.is_empty() {
            return Err("the search space has no axes".into());
        }
        for (i, axis) in axes.iter().enumerate() {
            if axes[..i].iter().any(|a| a.key == axis.key) {
                return Err(format!("key `{}` appears twice", axis.key));
            }
        }
        Ok(Space { axes })
    }

    /// The space of a `[grid]` table, in its order; the error names the key at fault.
    pub fn from_table(table: &toml::Table) -> Result<Space, (String, String)> {
        let axes = table
            .iter()
            .map(|(key, value)| {
                let domain = Domain::parse(key, value).map_err(|m| (key.clone(), m))?;
                Ok(Axis { key: key.clone(), domain })
            })
            .collect::<Result<Vec<_>, (String, String)>>()?;
        Space::new(axes).map_err(|m| (String::new(), m))
    }

    /// The first axis that is a range, for the "a range needs random or tpe" error of a grid.
    pub fn first_range(&self) -> Option<&Axis> {
        self.axes.iter().find(|a| a.domain.is_range())
    }

    /// The internal coordinate of axis `axis` in `point` (looked up by key), if present and
    /// inside the domain.
    pub(crate) fn coordinate(&self, axis: usize, point: &Point) -> Option<f64> {
        let key = &self.axes[axis].key;
        let (_, value) = point.iter().find(|(k, _)| k == key)?;
        self.axes[axis].domain.to_internal(value)
    }

    /// Builds a point from one internal coordinate per axis.
    pub(crate) fn point_from_internal(&self, coordinates: &[f64]) -> Point {
        self.axes
            .iter()
            .zip(coordinates)
            .map(|(axis, &x)| (axis.key.clone(), axis.domain.from_internal(x)))
            .collect()
    }
}

fn parse_range(key: &str, table: &toml::Table) -> Result<Domain, String> {
    if let Some(unknown) = table.keys().find(|k| !RANGE_KEYS.contains(&k.as_str())) {
        return Err(format!(
            "`{key}`: unknown range key `{unknown}` (expected min, max, log, int)"
        ));
    }
    let flag = |name: &str| match table.get(name) {
        None => Ok(false),
        Some(Value::Boolean(b)) => Ok(*b),
        Some(other) => {
            Err(format!("`{key}.{name}` must be true or false, not {}", other.type_str()))
        }
    };
    let (log, int) = (flag("log")?, flag("int")?);
    let bound = |name: &str| table.get(name).ok_or_else(|| format!("`{key}` needs `{name}`"));
    let (min, max) = (bound("min")?, bound("max")?);
    if int {
        let integer = |name: &str, v: &Value| {
            v.as_integer()
                .ok_or_else(|| format!("`{key}.{name}` must be an integer with `int = true`"))
        };
        let (min, max) = (integer("min", min)?, integer("max", max)?);
        check_bounds(key, min as f64, max as f64, log)?;
        return Ok(Domain::Int { min, max, log });
    }
    let number = |name: &str, v: &Value| {
        as_f64(v)
            .filter(|x| x.is_finite())
            .ok_or_else(|| format!("`{key}.{name}` must be a finite number"))
    };
    let (min, max) = (number("min", min)?, number("max", max)?);
    check_bounds(key, min, max, log)?;
    Ok(Domain::Float { min, max, log })
}

fn check_bounds(key: &str, min: f64, max: f64, log: bool) -> Result<(), String> {
    if min >= max {
        return Err(format!("`{key}`: min ({min}) must be less than max ({max})"));
    }
    if log && min <= 0.0 {
        return Err(format!("`{key}`: `log = true` needs min > 0 (min is {min})"));
    }
    Ok(())
}

fn as_f64(value: &Value) -> Option<f64> {
    match value {
        Value::Float(x) => Some(*x),
        Value::Integer(i) => Some(*i as f64),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Domain, String> {
        let doc: toml::Table = toml::from_str(&format!("v = {text}")).unwrap();
        Domain::parse("v", &doc["v"])
    }

    #[test]
    fn parses_lists_and_each_kind_of_range() {
        assert_eq!(
            parse("[1, 2]").unwrap(),
            Domain::Categorical(vec![Value::Integer(1), Value::Integer(2)])
        );
        assert_eq!(
            parse("{ min = 1e-4, max = 3e-3, log = true }").unwrap(),
            Domain::Float { min: 1e-4, max: 3e-3, log: true }
        );
        assert_eq!(
            parse("{ min = 0, max = 0.5 }").unwrap(),
            Domain::Float { min: 0.0, max: 0.5, log: false }
        );
        assert_eq!(
            parse("{ min = 8, max = 64, int = true, log = true }").unwrap(),
            Domain::Int { min: 8, max: 64, log: true }
        );
    }

    #[test]
    fn rejects_bad_ranges_with_a_message_naming_the_problem() {
        let cases = [
            ("[]", "no values"),
            ("\"x\"", "must be a list"),
            ("{ min = 1, max = 1 }", "less than max"),
            ("{ min = 2, max = 1 }", "less than max"),
            ("{ min = 0.0, max = 1.0, log = true }", "min > 0"),
            ("{ min = 0.0, max = 1.0, step = 0.1 }", "unknown range key `step`"),
            ("{ min = 0.5, max = 4, int = true }", "must be an integer"),
            ("{ min = nan, max = 1.0 }", "finite"),
            ("{ min = 0.0, max = inf }", "finite"),
            ("{ max = 1.0 }", "needs `min`"),
            ("{ min = 0.0, max = 1.0, log = 1 }", "true or false"),
        ];
        for (text, expected) in cases {
            let error = parse(text).unwrap_err();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }

    #[test]
    fn internal_round_trip_and_clamping() {
        let lr = Domain::Float { min: 1e-4, max: 3e-3, log: true };
        let x = lr.to_internal(&Value::Float(1e-3)).unwrap();
        assert!((x - 1e-3f64.ln()).abs() < 1e-12);
        assert_eq!(lr.from_internal(100.0), Value::Float(3e-3));
        let width = Domain::Int { min: 8, max: 64, log: false };
        assert_eq!(width.from_internal(10.4), Value::Integer(10));
        assert_eq!(width.from_internal(1e9), Value::Integer(64));
        assert_eq!(width.to_internal(&Value::Integer(65)), None);
        let model = Domain::Categorical(vec![Value::String("a".into()), Value::String("b".into())]);
        assert_eq!(model.to_internal(&Value::String("b".into())), Some(1.0));
        assert_eq!(model.to_internal(&Value::String("c".into())), None);
    }

    #[test]
    fn space_from_table_names_the_key_and_rejects_duplicates() {
        let table: toml::Table = toml::from_str("a = [1]\nb = { min = 3, max = 1 }").unwrap();
        let (key, message) = Space::from_table(&table).unwrap_err();
        assert_eq!(key, "b");
        assert!(message.contains("less than max"));
        let axis =
            |k: &str| Axis { key: k.into(), domain: Domain::Categorical(vec![Value::Integer(1)]) };
        assert!(Space::new(vec![axis("a"), axis("a")]).unwrap_err().contains("twice"));
        let table: toml::Table = toml::from_str("a = [1]\nb = { min = 0, max = 1 }").unwrap();
        assert_eq!(Space::from_table(&table).unwrap().first_range().unwrap().key, "b");
    }
}
