//! The package's exceptions and how the crates' errors become them: bad input is a
//! `ValueError`/`TypeError` naming the value, a closed object a `ClosedError`, an encoder or
//! server failure an `EncoderError`/`RemoteError`/`OSError`.

use framecast_stream::StreamError;
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;

pyo3::create_exception!(
    framecast,
    ClosedError,
    PyRuntimeError,
    "The display, server, encoder or writer was closed."
);
pyo3::create_exception!(
    framecast,
    EncoderError,
    PyRuntimeError,
    "The encoder failed or is not available."
);
pyo3::create_exception!(
    framecast,
    RemoteError,
    PyRuntimeError,
    "A remote (VTR1) encode failed: the server refused, was unreachable, or the connection broke."
);

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("ClosedError", py.get_type::<ClosedError>())?;
    m.add("EncoderError", py.get_type::<EncoderError>())?;
    m.add("RemoteError", py.get_type::<RemoteError>())?;
    Ok(())
}

/// A streaming error as the Python exception a caller can act on.
pub(crate) fn stream_error(e: StreamError) -> PyErr {
    let text = e.to_string();
    match e {
        StreamError::Closed(_) => ClosedError::new_err(text),
        StreamError::Frame(_) | StreamError::InvalidConfig(_) | StreamError::InvalidName(_) => {
            PyValueError::new_err(text)
        }
        StreamError::DuplicateStream(_) => PyValueError::new_err(text),
        StreamError::Bind { .. } | StreamError::Runtime(_) => PyOSError::new_err(text),
        StreamError::Backend(_) | StreamError::NoVideoBackend(_) => EncoderError::new_err(text),
        _ => PyRuntimeError::new_err(text),
    }
}

/// An encoding error: bad frames and settings are `ValueError`, the rest `EncoderError`.
pub(crate) fn encode_error(e: framecast_encode::EncodeError) -> PyErr {
    use framecast_encode::EncodeError as E;
    let text = e.to_string();
    match e {
        E::Frame(_) | E::InvalidConfig(_) | E::UnknownBackend { .. } => PyValueError::new_err(text),
        E::Closed => ClosedError::new_err(text),
        _ => EncoderError::new_err(text),
    }
}

/// A type the function does not take.
pub(crate) fn type_error(message: impl Into<String>) -> PyErr {
    PyTypeError::new_err(message.into())
}

/// A value out of range.
pub(crate) fn value_error(message: impl Into<String>) -> PyErr {
    PyValueError::new_err(message.into())
}
