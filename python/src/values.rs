//! JSON-shaped values both ways: events and metrics to Python dicts, colour descriptions from
//! Python (`None`, a preset name, a dict, or an object with `to_dict()` like pdum.rfb's
//! `ColorSpace`).

use crate::errors::{type_error, value_error};
use framecast_stream::protocol::WireColor;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use serde_json::Value;

/// A JSON value as the equivalent Python object.
pub(crate) fn to_py<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i.into_pyobject(py)?.into_any(),
            (_, Some(u)) => u.into_pyobject(py)?.into_any(),
            _ => n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any(),
        },
        Value::String(s) => s.into_pyobject(py)?.into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (k, item) in map {
                dict.set_item(k, to_py(py, item)?)?;
            }
            dict.into_any()
        }
    })
}

fn field<'py>(d: &Bound<'py, PyDict>, key: &str) -> PyResult<Option<Bound<'py, PyAny>>> {
    d.get_item(key)
}

/// A colour description from Python (see the module docs); `None` is the stream's default.
pub(crate) fn color(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<WireColor>> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(None);
    };
    if let Ok(name) = obj.extract::<String>() {
        return match name.to_ascii_lowercase().as_str() {
            "srgb" => Ok(Some(WireColor::srgb())),
            "display-p3" | "display_p3" | "p3" => Ok(Some(WireColor::display_p3())),
            other => Err(value_error(format!(
                "unknown colour preset {other:?}: use \"srgb\", \"display-p3\" or a dict"
            ))),
        };
    }
    let dict = if obj.hasattr("to_dict")? {
        obj.call_method0("to_dict")?
    } else {
        obj.clone()
    };
    let dict = dict.cast::<PyDict>().map_err(|_| {
        type_error("color must be None, \"srgb\", \"display-p3\", a dict, or a ColorSpace")
    })?;
    let text = |key: &str, default: &str| -> PyResult<String> {
        Ok(match field(dict, key)? {
            Some(v) => v.extract()?,
            None => default.into(),
        })
    };
    let c = WireColor {
        primaries: text("primaries", "bt709")?,
        transfer: text("transfer", "srgb")?,
        matrix: text("matrix", "rgb")?,
        full_range: match field(dict, "full_range")? {
            Some(v) => v.extract()?,
            None => true,
        },
        bit_depth: match field(dict, "bit_depth")? {
            Some(v) => v.extract()?,
            None => 8,
        },
    };
    for (what, value, allowed) in [
        (
            "primaries",
            &c.primaries,
            &["bt709", "display-p3", "bt2020"][..],
        ),
        (
            "transfer",
            &c.transfer,
            &["srgb", "bt709", "pq", "hlg", "linear"][..],
        ),
        ("matrix", &c.matrix, &["rgb", "bt709", "bt2020-ncl"][..]),
    ] {
        if !allowed.contains(&value.as_str()) {
            return Err(value_error(format!(
                "color {what} {value:?} is not one of {allowed:?}"
            )));
        }
    }
    Ok(Some(c))
}
