//! [`Plain`]: types whose every bit pattern is a valid value, so their bytes can sit in
//! shared memory another process writes (`Value`, `Array`) and travel as they are, with no
//! codec (`process::Pool::map_plain`, and `Pool::map` over numbers).
//!
//! Two ways to know a type is plain:
//!
//! * **by its bound**, `T: Plain` — what users write, and what `plain_bytes` /
//!   `plain_from_bytes` take;
//! * **by its `TypeId`**, for code generic over types that carry no such bound (`Pool::map`
//!   takes any serde type): `number_bytes` / `numbers_from_bytes` answer `None` unless `T`
//!   is one of the primitive numbers, which are all `Plain`. The check compares constants and
//!   folds away once the code is made for a concrete `T`.
//!
//! Either way the copy itself is the one pair of unsafe functions at the bottom.

use std::any::TypeId;

/// Types that may live in shared memory and be read back whatever another process wrote —
/// and so also travel as their raw bytes (`process::Pool::map_plain`).
///
/// # Safety
/// Every bit pattern of `size_of::<Self>()` bytes must be a valid `Self`; the type must hold
/// no pointers or references, have no `Drop`, no padding bytes (its bytes are read as
/// `u8`s), and an alignment of at most 64.
pub unsafe trait Plain: Copy + Send + Sync + 'static {}

macro_rules! plain {
    ($($t:ty),*) => { $(
        // SAFETY: every bit pattern is a valid value of this primitive number type.
        unsafe impl Plain for $t {}
    )* };
}
plain!(
    u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize, f32, f64
);

// SAFETY: an array of Plain values is Plain: no padding, every element any bits.
unsafe impl<T: Plain, const N: usize> Plain for [T; N] {}

/// The bytes of `items`, as they are in memory.
pub(crate) fn plain_bytes<T: Plain>(items: &[T]) -> &[u8] {
    // SAFETY: `Plain` types have no padding.
    unsafe { bytes_of(items) }
}

/// `bytes` as values of `T` (copied into a new, aligned `Vec`), or `None` if they are not a
/// whole number of values. Any bytes will do otherwise: `Plain` says every pattern is valid.
pub(crate) fn plain_from_bytes<T: Plain>(bytes: &[u8]) -> Option<Vec<T>> {
    // SAFETY: `Plain` says every bit pattern is a valid `T`.
    unsafe { values_from(bytes) }
}

/// True if `T` is a primitive number (`u8` to `u128`, `i8` to `i128`, `usize`, `isize`, `f32`,
/// `f64`): one of the `Plain` types above, known by its `TypeId`.
pub(crate) fn is_plain_number<T: ?Sized + 'static>() -> bool {
    let t = TypeId::of::<T>();
    macro_rules! any_of {
        ($($n:ty),*) => { false $(|| t == TypeId::of::<$n>())* };
    }
    any_of!(
        u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize, f32, f64
    )
}

/// [`plain_bytes`] for a `T` that is a primitive number; `None` for any other type.
pub(crate) fn number_bytes<T: 'static>(items: &[T]) -> Option<&[u8]> {
    // SAFETY: checked first: a primitive number has no padding.
    is_plain_number::<T>().then(|| unsafe { bytes_of(items) })
}

/// [`plain_from_bytes`] for a `T` that is a primitive number; `None` for any other type too.
pub(crate) fn numbers_from_bytes<T: 'static>(bytes: &[u8]) -> Option<Vec<T>> {
    if !is_plain_number::<T>() {
        return None;
    }
    // SAFETY: checked above: every bit pattern is a valid primitive number.
    unsafe { values_from(bytes) }
}

/// The bytes of `items`.
///
/// # Safety
/// `T` has no padding bytes (every byte of a `T` is initialized).
unsafe fn bytes_of<T>(items: &[T]) -> &[u8] {
    // SAFETY: every byte of the slice is initialized (the caller's promise); the length is
    // the slice's size in bytes; u8 has alignment 1; the borrow keeps `items` alive.
    unsafe { std::slice::from_raw_parts(items.as_ptr().cast::<u8>(), size_of_val(items)) }
}

/// `bytes` copied into a new, aligned `Vec<T>`; `None` if they are not a whole number of `T`s.
///
/// # Safety
/// Every bit pattern of `size_of::<T>()` bytes is a valid `T`.
unsafe fn values_from<T>(bytes: &[u8]) -> Option<Vec<T>> {
    let size = size_of::<T>();
    if size == 0 || !bytes.len().is_multiple_of(size) {
        return None;
    }
    let n = bytes.len() / size;
    let mut items: Vec<T> = Vec::with_capacity(n);
    // SAFETY: the Vec has room for `n` values, i.e. `bytes.len()` bytes, which do not overlap
    // the source; after the copy all `n` values are initialized with bit patterns the caller
    // promised are valid, so setting the length is sound.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), items.as_mut_ptr().cast::<u8>(), bytes.len());
        items.set_len(n);
    }
    Some(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_primitive_numbers_pass_the_type_id_check() {
        assert!(is_plain_number::<u64>() && is_plain_number::<f32>() && is_plain_number::<i128>());
        assert!(!is_plain_number::<bool>() && !is_plain_number::<char>());
        assert!(!is_plain_number::<String>() && !is_plain_number::<(u32, u32)>());
        assert_eq!(number_bytes(&[1u16, 2]), Some(&[1u8, 0, 2, 0][..]));
        assert_eq!(number_bytes(&[true]), None);
        assert_eq!(numbers_from_bytes::<u16>(&[1, 0, 2, 0]), Some(vec![1, 2]));
        assert_eq!(
            numbers_from_bytes::<u16>(&[1, 0, 2]),
            None,
            "not whole values"
        );
        assert_eq!(numbers_from_bytes::<bool>(&[7]), None, "bool is not plain");
    }
}
