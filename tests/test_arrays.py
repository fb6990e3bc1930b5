"""
numpy arrays as arguments: keyed by dtype, shape and contents, exactly.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from jobstamps import jobstamped
from jobstamps._encode import encode


def encoded(value):
    parts = []
    encode(value, parts, "x")
    return b"".join(parts)


def test_one_element_changed_in_ten_thousand():
    """np.arange(10000) and a copy with one element changed differ (their reprs agree)."""
    big = np.arange(10_000)
    changed = big.copy()
    changed[5000] += 1

    assert repr(big) == repr(changed)
    assert encoded(big) != encoded(changed)


def test_tenth_decimal():
    """Arrays that differ in the 10th decimal differ (their reprs round them alike)."""
    first = np.array([0.1234567891])
    second = np.array([0.1234567899])

    assert repr(first) == repr(second)
    assert encoded(first) != encoded(second)


def test_dtype_and_shape_are_part_of_the_key():
    """Equal numbers of other dtypes, or in another shape, differ."""
    values = np.arange(6)

    assert encoded(values) != encoded(values.astype(np.int32))
    assert encoded(values) != encoded(values.astype(np.float64))
    assert encoded(values) != encoded(values.reshape(2, 3))
    assert encoded(values.reshape(2, 3)) != encoded(values.reshape(3, 2))
    assert encoded(np.zeros(0, np.int8)) != encoded(np.zeros(0, np.uint8))


def test_equal_arrays_built_differently_are_equal():
    """A view, a copy, C and Fortran order: equal arrays share a key."""
    matrix = np.arange(12.0).reshape(3, 4)
    variants = [
        matrix.copy(),
        np.asfortranarray(matrix),
        matrix.T.copy().T,
        np.arange(24.0).reshape(3, 8)[:, ::2] // 2 * 0 + matrix,
        np.pad(matrix, 1)[1:-1, 1:-1],
    ]

    for variant in variants:
        assert encoded(matrix) == encoded(variant)


def test_nan_is_nan_whatever_its_bits():
    """Every NaN is the same NaN, as for Python floats; -0.0 is not 0.0."""
    nan = np.array([np.nan, 1.0])
    negative_nan = nan.copy()
    negative_nan[0] = -negative_nan[0]
    payload = np.array([0x7FF8000000000001], dtype="<u8").view("<f8")

    assert nan.tobytes() != negative_nan.tobytes()
    assert encoded(nan) == encoded(negative_nan)
    assert encoded(nan[:1]) == encoded(payload)
    assert encoded(np.array([0.0])) != encoded(np.array([-0.0]))
    assert encoded(np.array([complex(np.nan, 1)])) == encoded(np.array([complex(-np.nan, 1)]))


def test_bools_are_keyed_by_truth():
    """A bool array seen through other bytes is keyed by its truth values."""
    raw = np.array([2, 0], dtype=np.uint8).view(bool)

    assert encoded(raw) == encoded(np.array([True, False]))


def test_scalars_and_dtypes():
    """numpy scalars by dtype and value, distinct from Python's; dtypes by what they describe."""
    assert encoded(np.float64(0.1234567891)) != encoded(np.float64(0.1234567899))
    assert encoded(np.float64(1.5)) != encoded(1.5)
    assert encoded(np.float64(1.5)) != encoded(np.float32(1.5))
    assert encoded(np.int64(3)) != encoded(np.array(3))
    assert encoded(np.dtype("<f8")) != encoded(np.dtype(">f8"))
    assert encoded(np.dtype([("a", "<i4")])) != encoded(np.dtype([("b", "<i4")]))


def test_structured_arrays_by_field_not_padding():
    """Structured arrays are keyed field by field, so padding bytes don't matter."""
    dtype = np.dtype([("a", "<i1"), ("b", "<f8")], align=True)
    first = np.zeros(2, dtype)
    second = np.zeros(2, dtype)
    second.view(np.uint8)[1] = 7  # a padding byte

    assert first.tobytes() != second.tobytes()
    assert encoded(first) == encoded(second)
    second["b"][1] = 1.0
    assert encoded(first) != encoded(second)


def test_object_arrays_by_their_items():
    """Object arrays are keyed item by item, like a list, with their shape."""
    first = np.array([1, "a", None], dtype=object)

    assert encoded(first) == encoded(np.array([1, "a", None], dtype=object))
    assert encoded(first) != encoded(np.array([1, "b", None], dtype=object))
    assert encoded(first) != encoded(np.array([1.0, "a", None], dtype=object))


def test_numpy_functions_as_values():
    """ufuncs and array functions are keyed by name."""
    assert encoded(np.mean) != encoded(np.sum)
    assert encoded(np.add) != encoded(np.multiply)
    assert encoded(np.add) == encoded(np.add)


def test_other_numpy_objects_are_refused_never_keyed_by_repr():
    """A masked array or a random generator is a TypeError naming the parameter."""
    masked = np.ma.masked_array([1, 2], mask=[0, 1])

    with pytest.raises(TypeError, match=r"argument 'x': numpy.ma.*MaskedArray.*register_key\(MaskedArray, func\)"):
        encoded(masked)
    with pytest.raises(TypeError, match=r"argument 'x': numpy.random.*Generator"):
        encoded(np.random.default_rng(0))


@pytest.mark.skipif(np.dtype(np.longdouble).itemsize == 8, reason="long double is double here")
def test_long_double_arrays_are_refused():
    """long double arrays may carry padding garbage, so they are refused."""
    with pytest.raises(TypeError, match="long double"):
        encoded(np.ones(2, np.longdouble))


def test_array_arguments_of_a_stamped_function():
    """A stamped function runs again for an array that differs in one element."""
    runs = []

    @jobstamped(ignore=("runs",))
    def last(values):
        runs.append(1)
        return float(values[-1])

    big = np.arange(10_000, dtype=np.float64)
    changed = big.copy()
    changed[-1] += 1e-9

    assert last(big) == last(big.copy())
    assert last(changed) != last(big)
    assert 2 == len(runs)


def test_numpy_is_imported_only_for_arrays():
    """Keying plain values, and objects of other modules, never imports numpy."""
    code = (
        "import sys, decimal, collections\n"
        "from jobstamps import jobstamped\n"
        "f = jobstamped(lambda *a: 1)\n"
        "f(1, 'a', [1.5], {'b': b'x'}, decimal.Decimal('1.1'), collections.OrderedDict(a=1))\n"
        "print('numpy' in sys.modules)\n"
    )
    imported = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout.strip()

    assert "False" == imported
