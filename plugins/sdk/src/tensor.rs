//! Typed views of a tensor's elements. A WIT `tensor` carries its data as a variant (f32, u8 or
//! s64) beside a shape that nothing forces to agree with it; each accessor here checks both the
//! element type and `product(shape) == len` once, so a node indexes the slice it gets back
//! without re-checking, and a mismatch becomes `invalid-input` naming the tensor.

use crate::bindings::streamhost::node::types::{Tensor, TensorData};
use crate::Error;

impl Tensor {
    /// The elements as f32, if that is their type and their count matches the shape.
    pub fn f32s(&self) -> Result<&[f32], Error> {
        match &self.data {
            TensorData::F32(data) => self.checked(data),
            _ => Err(self.wrong_type("f32")),
        }
    }

    /// The elements as u8, if that is their type and their count matches the shape.
    pub fn u8s(&self) -> Result<&[u8], Error> {
        match &self.data {
            TensorData::U8(data) => self.checked(data),
            _ => Err(self.wrong_type("u8")),
        }
    }

    /// The elements as i64 (WIT `s64`), if that is their type and their count matches the shape.
    pub fn i64s(&self) -> Result<&[i64], Error> {
        match &self.data {
            TensorData::S64(data) => self.checked(data),
            _ => Err(self.wrong_type("s64")),
        }
    }

    /// The element type's name: `"f32"`, `"u8"` or `"s64"`.
    pub fn element_type(&self) -> &'static str {
        match self.data {
            TensorData::F32(_) => "f32",
            TensorData::U8(_) => "u8",
            TensorData::S64(_) => "s64",
        }
    }

    /// The number of elements the shape calls for (`None` on overflow).
    pub fn elements(&self) -> Option<usize> {
        self.shape
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(usize::try_from(d).ok()?))
    }

    fn checked<'a, T>(&self, data: &'a [T]) -> Result<&'a [T], Error> {
        if self.elements() == Some(data.len()) {
            Ok(data)
        } else {
            Err(Error::input(format!(
                "tensor {:?} has shape {:?} but {} elements",
                self.name,
                self.shape,
                data.len()
            )))
        }
    }

    fn wrong_type(&self, wanted: &str) -> Error {
        Error::input(format!(
            "tensor {:?} holds {} elements, {wanted} expected",
            self.name,
            self.element_type()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(shape: &[u32], data: TensorData) -> Tensor {
        Tensor {
            name: "x".into(),
            shape: shape.to_vec(),
            data,
        }
    }

    #[test]
    fn typed_views_check_the_type_and_the_shape() {
        let t = tensor(&[2, 3], TensorData::F32(vec![0.5; 6]));
        assert_eq!(t.f32s(), Ok(&[0.5f32; 6][..]));
        assert_eq!(
            t.u8s(),
            Err(Error::input("tensor \"x\" holds f32 elements, u8 expected"))
        );
        let short = tensor(&[2, 3], TensorData::S64(vec![1; 5]));
        assert_eq!(
            short.i64s(),
            Err(Error::input("tensor \"x\" has shape [2, 3] but 5 elements"))
        );
        assert_eq!(
            tensor(&[4], TensorData::U8(vec![1, 2, 3, 4])).u8s(),
            Ok(&[1u8, 2, 3, 4][..])
        );
        // A scalar (no dimensions) has one element.
        assert_eq!(
            tensor(&[], TensorData::F32(vec![1.0])).f32s(),
            Ok(&[1.0f32][..])
        );
    }
}
