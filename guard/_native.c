/*
 * guard._native: the hot loops of a check, in C. Optional: every function here has a Python
 * twin that decides the same (the oracle), and the guard runs on the twins when this module
 * is not built. Property tests hold each function to its twin.
 *
 *   canonical_json(mapping, exclude)  -> bytes   twin: guard.signing._canonical_python
 *   screen(records, ...)              -> [int]   twin: the loop in guard.engine.screen
 *   field_values(rows, names)         -> [[...]] twin: guard.checks.contract._field_values
 *
 * Each function does only the plain case and hands anything else back to Python:
 * canonical_json raises Unsupported, screen returns the positions of the records the check
 * modules must look at. So the C code never has to reproduce an edge case to be right.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

static PyObject *Unsupported; /* guard._native.Unsupported */
static PyObject *s_id, *s_object, *s_key, *s_source, *s_observed_at, *s_updated_at, *s_lineage, *s_fields,
    *s_signature, *s_content, *s_system, *s_at;

/* --- canonical JSON ---------------------------------------------------------------------- */

typedef struct {
    char *data;
    Py_ssize_t size, capacity;
} Buffer;

static int buffer_reserve(Buffer *b, Py_ssize_t extra) {
    if (b->size + extra <= b->capacity) return 0;
    Py_ssize_t wanted = b->capacity ? b->capacity : 256;
    while (wanted < b->size + extra) wanted *= 2;
    char *grown = PyMem_Realloc(b->data, (size_t)wanted);
    if (grown == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = grown;
    b->capacity = wanted;
    return 0;
}

static int buffer_add(Buffer *b, const char *text, Py_ssize_t size) {
    if (buffer_reserve(b, size) < 0) return -1;
    memcpy(b->data + b->size, text, (size_t)size);
    b->size += size;
    return 0;
}

/* A str as json.dumps(ensure_ascii=False) writes it, in UTF-8: only '"', '\\' and controls escaped. */
static int add_string(Buffer *b, PyObject *text) {
    Py_ssize_t size;
    const char *utf8 = PyUnicode_AsUTF8AndSize(text, &size); /* fails on a lone surrogate */
    if (utf8 == NULL) return -1;
    if (buffer_reserve(b, size * 6 + 2) < 0) return -1;
    char *out = b->data + b->size;
    *out++ = '"';
    static const char hex[] = "0123456789abcdef";
    for (Py_ssize_t i = 0; i < size; i++) {
        unsigned char c = (unsigned char)utf8[i];
        if (c == '"' || c == '\\') {
            *out++ = '\\';
            *out++ = (char)c;
        } else if (c < 0x20) {
            *out++ = '\\';
            switch (c) {
                case '\b': *out++ = 'b'; break;
                case '\f': *out++ = 'f'; break;
                case '\n': *out++ = 'n'; break;
                case '\r': *out++ = 'r'; break;
                case '\t': *out++ = 't'; break;
                default:
                    *out++ = 'u';
                    *out++ = '0';
                    *out++ = '0';
                    *out++ = hex[c >> 4];
                    *out++ = hex[c & 0xF];
            }
        } else {
            *out++ = (char)c;
        }
    }
    *out++ = '"';
    b->size = out - b->data;
    return 0;
}

static int add_repr(Buffer *b, PyObject *value) {
    PyObject *text = PyObject_Repr(value);
    if (text == NULL) return -1;
    Py_ssize_t size;
    const char *utf8 = PyUnicode_AsUTF8AndSize(text, &size);
    int failed = utf8 == NULL || buffer_add(b, utf8, size) < 0;
    Py_DECREF(text);
    return failed ? -1 : 0;
}

#define MAX_DEPTH 64

static int add_value(Buffer *b, PyObject *value, PyObject *exclude, int depth);

/* A dict with only str keys, sorted by code point as sort_keys sorts them. */
static int add_object(Buffer *b, PyObject *mapping, PyObject *exclude, int depth) {
    PyObject *keys = PyDict_Keys(mapping);
    if (keys == NULL) return -1;
    Py_ssize_t count = PyList_GET_SIZE(keys);
    for (Py_ssize_t i = 0; i < count; i++) {
        if (!PyUnicode_CheckExact(PyList_GET_ITEM(keys, i))) {
            Py_DECREF(keys);
            PyErr_SetString(Unsupported, "a key that is not text");
            return -1;
        }
    }
    if (PyList_Sort(keys) < 0 || buffer_add(b, "{", 1) < 0) {
        Py_DECREF(keys);
        return -1;
    }
    int first = 1;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *key = PyList_GET_ITEM(keys, i);
        if (exclude != NULL) {
            int skip = PySet_Contains(exclude, key);
            if (skip < 0) goto fail;
            if (skip) continue;
        }
        PyObject *item = PyDict_GetItemWithError(mapping, key);
        if (item == NULL) {
            if (!PyErr_Occurred()) PyErr_SetString(Unsupported, "the mapping changed while it was encoded");
            goto fail;
        }
        Py_INCREF(item);
        int failed = (!first && buffer_add(b, ",", 1) < 0) || add_string(b, key) < 0 || buffer_add(b, ":", 1) < 0 ||
                     add_value(b, item, NULL, depth + 1) < 0;
        Py_DECREF(item);
        if (failed) goto fail;
        first = 0;
    }
    Py_DECREF(keys);
    return buffer_add(b, "}", 1);
fail:
    Py_DECREF(keys);
    return -1;
}

static int add_value(Buffer *b, PyObject *value, PyObject *exclude, int depth) {
    if (depth > MAX_DEPTH) {
        PyErr_SetString(Unsupported, "nested too deep");
        return -1;
    }
    if (value == Py_None) return buffer_add(b, "null", 4);
    if (value == Py_True) return buffer_add(b, "true", 4);
    if (value == Py_False) return buffer_add(b, "false", 5);
    if (PyUnicode_CheckExact(value)) return add_string(b, value);
    if (PyLong_CheckExact(value)) return add_repr(b, value);
    if (PyFloat_CheckExact(value)) {
        double number = PyFloat_AS_DOUBLE(value);
        if (!Py_IS_FINITE(number)) {
            PyErr_SetString(Unsupported, "a float JSON cannot say");
            return -1;
        }
        return add_repr(b, value);
    }
    if (PyDict_CheckExact(value)) {
        if (Py_EnterRecursiveCall(" in canonical_json")) return -1;
        int result = add_object(b, value, exclude, depth);
        Py_LeaveRecursiveCall();
        return result;
    }
    if (PyList_CheckExact(value) || PyTuple_CheckExact(value)) {
        PyObject *items = PySequence_Tuple(value); /* a snapshot: encoding runs no Python code, but be sure */
        if (items == NULL) return -1;
        int failed = buffer_add(b, "[", 1) < 0;
        for (Py_ssize_t i = 0; !failed && i < PyTuple_GET_SIZE(items); i++) {
            failed = (i && buffer_add(b, ",", 1) < 0) || add_value(b, PyTuple_GET_ITEM(items, i), NULL, depth + 1) < 0;
        }
        Py_DECREF(items);
        return failed ? -1 : buffer_add(b, "]", 1);
    }
    PyErr_Format(Unsupported, "a value of type %.100s", Py_TYPE(value)->tp_name);
    return -1;
}

/* Any failure but running out of memory becomes Unsupported: Python then decides the case. */
static void as_unsupported(void) {
    if (PyErr_ExceptionMatches(Unsupported) || PyErr_ExceptionMatches(PyExc_MemoryError)) return;
    PyErr_Clear();
    PyErr_SetString(Unsupported, "a value the plain encoder does not take");
}

static PyObject *canonical_bytes_of(PyObject *mapping, PyObject *exclude) {
    if (!PyDict_CheckExact(mapping)) {
        PyErr_SetString(Unsupported, "not a dict");
        return NULL;
    }
    Buffer b = {NULL, 0, 0};
    PyObject *result = NULL;
    if (add_value(&b, mapping, exclude, 0) == 0) {
        result = PyBytes_FromStringAndSize(b.data, b.size);
    } else {
        as_unsupported();
    }
    PyMem_Free(b.data);
    return result;
}

static PyObject *canonical_json(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "canonical_json(mapping, exclude) takes 2 arguments");
        return NULL;
    }
    PyObject *exclude = args[1] == Py_None ? NULL : args[1];
    if (exclude != NULL && !PyAnySet_Check(exclude)) {
        PyErr_SetString(PyExc_TypeError, "exclude must be a set or frozenset, or None");
        return NULL;
    }
    return canonical_bytes_of(args[0], exclude);
}

/* --- the first pass of a check ------------------------------------------------------------- */

enum { COL_IDS, COL_OBJECTS, COL_KEYS, COL_SOURCES, COL_OBSERVED, COL_UPDATED, COL_AGES, COL_FIELDS, COL_REASONS, COLS };

typedef struct {
    PyObject *parsed; /* dict: text -> (aware datetime, age in seconds) */
    PyObject *stamp;  /* callable: text -> that tuple, or None */
} Stamps;

/* The (datetime, age) of a timestamp text: a new reference, Py_None (new) when it is not one, NULL on error. */
static PyObject *stamp_of(Stamps *st, PyObject *value) {
    if (!PyUnicode_CheckExact(value)) Py_RETURN_NONE;
    PyObject *found = PyDict_GetItemWithError(st->parsed, value);
    if (found != NULL) {
        Py_INCREF(found);
        return found;
    }
    if (PyErr_Occurred()) return NULL;
    found = PyObject_CallOneArg(st->stamp, value);
    if (found != NULL && found != Py_None && !(PyTuple_CheckExact(found) && PyTuple_GET_SIZE(found) == 2)) {
        Py_DECREF(found);
        PyErr_SetString(PyExc_TypeError, "stamp() must return a (datetime, float) tuple or None");
        return NULL;
    }
    return found;
}

static int age_of(PyObject *stamp, double *age) {
    *age = PyFloat_AsDouble(PyTuple_GET_ITEM(stamp, 1));
    return (*age == -1.0 && PyErr_Occurred()) ? -1 : 0;
}

/* Whether a lineage chain is well-formed, starts at the owner and moves forward in time: 1, 0, or -1 on error. */
static int plain_lineage(Stamps *st, PyObject *hops, PyObject *owner) {
    if (!PyList_CheckExact(hops) || PyList_GET_SIZE(hops) == 0) return 0;
    PyObject *chain = PySequence_Tuple(hops);
    if (chain == NULL) return -1;
    PyObject *previous = NULL;
    int verdict = 1;
    for (Py_ssize_t position = 0; verdict == 1 && position < PyTuple_GET_SIZE(chain); position++) {
        PyObject *hop = PyTuple_GET_ITEM(chain, position);
        if (!PyDict_CheckExact(hop)) {
            verdict = 0;
            break;
        }
        PyObject *system = PyDict_GetItemWithError(hop, s_system);
        if (system == NULL && PyErr_Occurred()) {
            verdict = -1;
            break;
        }
        if (system == NULL || !PyUnicode_CheckExact(system) || PyUnicode_GET_LENGTH(system) == 0) {
            verdict = 0;
            break;
        }
        if (position == 0) {
            int same = PyUnicode_Compare(system, owner) == 0;
            if (!same && PyErr_Occurred()) {
                verdict = -1;
                break;
            }
            if (!same) {
                verdict = 0;
                break;
            }
        }
        PyObject *at = PyDict_GetItemWithError(hop, s_at);
        if (at == NULL) {
            verdict = PyErr_Occurred() ? -1 : 0;
            break;
        }
        Py_INCREF(at);
        PyObject *moment = stamp_of(st, at);
        Py_DECREF(at);
        if (moment == NULL) {
            verdict = -1;
            break;
        }
        if (moment == Py_None) {
            Py_DECREF(moment);
            verdict = 0;
            break;
        }
        PyObject *when = PyTuple_GET_ITEM(moment, 0);
        if (previous != NULL) {
            int earlier = PyObject_RichCompareBool(when, previous, Py_LT);
            if (earlier != 0) verdict = earlier < 0 ? -1 : 0;
        }
        Py_INCREF(when);
        Py_XDECREF(previous);
        previous = when;
        Py_DECREF(moment);
    }
    Py_XDECREF(previous);
    Py_DECREF(chain);
    return verdict;
}

/* A member of a record, as record.get(name) gives it (NULL when missing), as a new reference; *error on failure. */
static PyObject *member(PyObject *record, PyObject *name, int *error) {
    PyObject *value = PyDict_GetItemWithError(record, name);
    if (value == NULL) {
        if (PyErr_Occurred()) *error = 1;
        return NULL;
    }
    if (value == Py_None) return NULL;
    Py_INCREF(value);
    return value;
}

static int text_member(PyObject *value) {
    return value != NULL && PyUnicode_CheckExact(value) && PyUnicode_GET_LENGTH(value) > 0;
}

static int set_column(PyObject *column, Py_ssize_t index, PyObject *value) {
    Py_INCREF(value);
    return PyList_SetItem(column, index, value);
}

typedef struct {
    PyObject *limits, *signing, *verify, *age_reason, *unsigned_members, *digest;
    double skew;
    Stamps stamps;
    PyObject *columns[COLS];
} Screen;

/* Whether a hex signature matches the HMAC-SHA256 of the record's canonical bytes, in constant time:
   1, 0, or -1 on error. What the plain path does not take (non-ASCII signatures, values the C
   encoder hands back) goes to the Python `verify`, which decides every case. */
static int signed_by(Screen *sc, PyObject *record, PyObject *signature, PyObject *secret) {
    PyObject *data = NULL;
    if (PyUnicode_IS_ASCII(signature) && PyBytes_CheckExact(secret)) {
        data = canonical_bytes_of(record, sc->unsigned_members);
        if (data == NULL) {
            if (!PyErr_ExceptionMatches(Unsupported)) return -1;
            PyErr_Clear();
        }
    }
    if (data == NULL) {
        PyObject *matches = PyObject_CallFunctionObjArgs(sc->verify, record, signature, secret, NULL);
        if (matches == NULL) return -1;
        int good = PyObject_IsTrue(matches);
        Py_DECREF(matches);
        return good;
    }
    PyObject *mac = PyObject_CallFunction(sc->digest, "OOs", secret, data, "sha256");
    Py_DECREF(data);
    if (mac == NULL) return -1;
    if (!PyBytes_CheckExact(mac)) {
        Py_DECREF(mac);
        PyErr_SetString(PyExc_TypeError, "digest() must return bytes");
        return -1;
    }
    static const char hex[] = "0123456789abcdef";
    const unsigned char *raw = (const unsigned char *)PyBytes_AS_STRING(mac);
    Py_ssize_t size = PyBytes_GET_SIZE(mac), given = PyUnicode_GET_LENGTH(signature);
    const Py_UCS1 *text = PyUnicode_1BYTE_DATA(signature);
    int good = given == 2 * size;
    unsigned char differs = 0;
    for (Py_ssize_t i = 0; good && i < size; i++) { /* every byte looked at: no early exit on a difference */
        unsigned char high = (unsigned char)text[2 * i], low = (unsigned char)text[2 * i + 1];
        if (high >= 'A' && high <= 'Z') high = (unsigned char)(high + 32);
        if (low >= 'A' && low <= 'Z') low = (unsigned char)(low + 32);
        differs |= (unsigned char)(high ^ (unsigned char)hex[raw[i] >> 4]) | (unsigned char)(low ^ (unsigned char)hex[raw[i] & 0xF]);
    }
    Py_DECREF(mac);
    return good && differs == 0;
}

/*
 * One record: 1 when cleared (its columns set, and its age reason when it is late), 0 when
 * the check modules must look at it, -1 on error. Exactly the loop of guard.engine.screen.
 */
static int screen_one(Screen *sc, PyObject *record, Py_ssize_t index) {
    if (!PyDict_CheckExact(record)) return 0;
    int error = 0, verdict = 0;
    PyObject *rid = member(record, s_id, &error), *obj = member(record, s_object, &error),
             *key = member(record, s_key, &error), *src = member(record, s_source, &error);
    PyObject *o = NULL, *u = NULL, *od = NULL, *ud = NULL, *hops = NULL, *f = NULL, *signature = NULL,
             *content = NULL, *limit = NULL;
    if (error) goto fail;
    if (!text_member(rid) || !text_member(obj) || !text_member(key) || !text_member(src)) goto done;
    limit = PyDict_GetItemWithError(sc->limits, obj);
    if (limit == NULL) {
        if (PyErr_Occurred()) goto fail;
        goto done;
    }
    Py_INCREF(limit);
    /* (rules, late_after, allowed_sources, owner, require_lineage) */
    PyObject *rules = PyTuple_GET_ITEM(limit, 0), *allowed = PyTuple_GET_ITEM(limit, 2),
             *owner = PyTuple_GET_ITEM(limit, 3);
    double late_after = PyFloat_AS_DOUBLE(PyTuple_GET_ITEM(limit, 1));
    int require_lineage = PyTuple_GET_ITEM(limit, 4) == Py_True;
    int allowed_here = PySet_Contains(allowed, src);
    if (allowed_here < 0) goto fail;
    if (!allowed_here) goto done;
    o = member(record, s_observed_at, &error);
    u = member(record, s_updated_at, &error);
    if (error) goto fail;
    if (o != NULL) {
        if ((od = stamp_of(&sc->stamps, o)) == NULL) goto fail;
        if (od == Py_None) goto done;
    }
    if (u != NULL) {
        if ((ud = stamp_of(&sc->stamps, u)) == NULL) goto fail;
        if (ud == Py_None) goto done;
    }
    PyObject *stamp = od != NULL ? od : ud;
    if (stamp == NULL) goto done;
    double age, updated_age;
    if (age_of(stamp, &age) < 0) goto fail;
    if (-age > sc->skew) goto done;
    if (ud != NULL) {
        if (age_of(ud, &updated_age) < 0) goto fail;
        if (-updated_age > sc->skew) goto done;
    }
    hops = member(record, s_lineage, &error);
    if (error) goto fail;
    if (hops != NULL) {
        int plain = plain_lineage(&sc->stamps, hops, owner);
        if (plain < 0) goto fail;
        if (!plain) goto done;
    } else if (require_lineage) {
        goto done;
    }
    f = member(record, s_fields, &error);
    signature = member(record, s_signature, &error);
    content = member(record, s_content, &error);
    if (error) goto fail;
    if ((f != NULL && !PyDict_CheckExact(f)) || (content != NULL && !PyUnicode_CheckExact(content)) ||
        (signature != NULL && !PyUnicode_CheckExact(signature)))
        goto done;
    PyObject *secret = PyDict_GetItemWithError(sc->signing, src);
    if (secret == NULL && PyErr_Occurred()) goto fail;
    if (secret != NULL) {
        if (signature == NULL) goto done;
        Py_INCREF(secret);
        int good = signed_by(sc, record, signature, secret);
        Py_DECREF(secret);
        if (good < 0) goto fail;
        if (!good) goto done;
    }
    PyObject **col = sc->columns;
    if (set_column(col[COL_IDS], index, rid) < 0 || set_column(col[COL_OBJECTS], index, obj) < 0 ||
        set_column(col[COL_KEYS], index, key) < 0 || set_column(col[COL_SOURCES], index, src) < 0 ||
        set_column(col[COL_FIELDS], index, f != NULL ? f : Py_None) < 0)
        goto fail;
    if (od != NULL && set_column(col[COL_OBSERVED], index, PyTuple_GET_ITEM(od, 0)) < 0) goto fail;
    if (ud != NULL && set_column(col[COL_UPDATED], index, PyTuple_GET_ITEM(ud, 0)) < 0) goto fail;
    PyObject *age_value = age > 0 ? PyTuple_GET_ITEM(stamp, 1) : NULL;
    if (age_value != NULL) {
        if (set_column(col[COL_AGES], index, age_value) < 0) goto fail;
    } else {
        PyObject *zero = PyFloat_FromDouble(0.0);
        if (zero == NULL || PyList_SetItem(col[COL_AGES], index, zero) < 0) goto fail;
        age = 0.0;
    }
    if (age > late_after) {
        PyObject *label = PyUnicode_FromFormat("%U %U from %U", obj, key, src);
        if (label == NULL) goto fail;
        PyObject *age_arg = PyList_GET_ITEM(col[COL_AGES], index);
        PyObject *found = PyObject_CallFunctionObjArgs(
            sc->age_reason, label, age_arg, od != NULL ? s_observed_at : s_updated_at, rules, NULL);
        Py_DECREF(label);
        if (found == NULL) goto fail;
        if (found != Py_None) {
            PyObject *reasons = PyList_New(1);
            if (reasons == NULL) {
                Py_DECREF(found);
                goto fail;
            }
            PyList_SET_ITEM(reasons, 0, found); /* steals */
            if (PyList_SetItem(col[COL_REASONS], index, reasons) < 0) goto fail;
        } else {
            Py_DECREF(found);
        }
    }
    verdict = 1;
    goto done;
fail:
    verdict = -1;
done:
    Py_XDECREF(rid);
    Py_XDECREF(obj);
    Py_XDECREF(key);
    Py_XDECREF(src);
    Py_XDECREF(o);
    Py_XDECREF(u);
    Py_XDECREF(od);
    Py_XDECREF(ud);
    Py_XDECREF(hops);
    Py_XDECREF(f);
    Py_XDECREF(signature);
    Py_XDECREF(content);
    Py_XDECREF(limit);
    return verdict;
}

static int check_limits(PyObject *limits) {
    PyObject *name, *limit;
    Py_ssize_t pos = 0;
    while (PyDict_Next(limits, &pos, &name, &limit)) {
        if (!PyTuple_CheckExact(limit) || PyTuple_GET_SIZE(limit) != 5 || !PyFloat_CheckExact(PyTuple_GET_ITEM(limit, 1)) ||
            !PyAnySet_Check(PyTuple_GET_ITEM(limit, 2)) || !PyUnicode_CheckExact(PyTuple_GET_ITEM(limit, 3)) ||
            !PyBool_Check(PyTuple_GET_ITEM(limit, 4))) {
            PyErr_SetString(PyExc_TypeError,
                            "limits values must be (rules, late_after: float, allowed_sources: set, owner: str, "
                            "require_lineage: bool)");
            return -1;
        }
    }
    return 0;
}

static PyObject *screen(PyObject *module, PyObject *args) {
    PyObject *records, *columns;
    Screen sc;
    if (!PyArg_ParseTuple(args, "OO!O!dO!OOOO!OO!:screen", &records, &PyDict_Type, &sc.limits, &PyDict_Type,
                          &sc.signing, &sc.skew, &PyDict_Type, &sc.stamps.parsed, &sc.stamps.stamp, &sc.verify,
                          &sc.age_reason, &PyTuple_Type, &columns, &sc.digest, &PyFrozenSet_Type,
                          &sc.unsigned_members))
        return NULL;
    if (check_limits(sc.limits) < 0) return NULL;
    PyObject *batch = PySequence_Tuple(records);
    if (batch == NULL) return NULL;
    Py_ssize_t size = PyTuple_GET_SIZE(batch);
    if (PyTuple_GET_SIZE(columns) != COLS) {
        PyErr_Format(PyExc_ValueError, "columns must be %d lists", COLS);
        Py_DECREF(batch);
        return NULL;
    }
    for (int c = 0; c < COLS; c++) {
        sc.columns[c] = PyTuple_GET_ITEM(columns, c);
        if (!PyList_CheckExact(sc.columns[c]) || PyList_GET_SIZE(sc.columns[c]) != size) {
            PyErr_SetString(PyExc_ValueError, "each column must be a list as long as the records");
            Py_DECREF(batch);
            return NULL;
        }
    }
    PyObject *slow = PyList_New(0);
    if (slow == NULL) {
        Py_DECREF(batch);
        return NULL;
    }
    for (Py_ssize_t index = 0; index < size; index++) {
        int cleared = screen_one(&sc, PyTuple_GET_ITEM(batch, index), index);
        if (cleared < 0) goto fail;
        if (cleared == 0) {
            PyObject *position = PyLong_FromSsize_t(index);
            if (position == NULL || PyList_Append(slow, position) < 0) {
                Py_XDECREF(position);
                goto fail;
            }
            Py_DECREF(position);
        }
    }
    Py_DECREF(batch);
    return slow;
fail:
    Py_DECREF(batch);
    Py_DECREF(slow);
    return NULL;
}

/* --- contract columns ------------------------------------------------------------------- */

static PyObject *field_values(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "field_values(rows, names) takes 2 arguments");
        return NULL;
    }
    PyObject *rows = PySequence_Tuple(args[0]);
    if (rows == NULL) return NULL;
    PyObject *names = PySequence_Tuple(args[1]);
    if (names == NULL) {
        Py_DECREF(rows);
        return NULL;
    }
    Py_ssize_t count = PyTuple_GET_SIZE(rows), fields = PyTuple_GET_SIZE(names);
    PyObject *out = PyList_New(fields);
    if (out == NULL) goto fail;
    for (Py_ssize_t f = 0; f < fields; f++) {
        PyObject *name = PyTuple_GET_ITEM(names, f);
        PyObject *column = PyList_New(count);
        if (column == NULL) goto fail;
        PyList_SET_ITEM(out, f, column);
        for (Py_ssize_t i = 0; i < count; i++) {
            PyObject *row = PyTuple_GET_ITEM(rows, i), *value;
            if (row == Py_None) {
                value = Py_NewRef(Py_None);
            } else if (PyDict_CheckExact(row)) {
                value = PyDict_GetItemWithError(row, name);
                if (value == NULL && PyErr_Occurred()) goto fail;
                value = Py_NewRef(value != NULL ? value : Py_None);
            } else {
                value = PyObject_CallMethod(row, "get", "O", name);
                if (value == NULL) goto fail;
            }
            PyList_SET_ITEM(column, i, value);
        }
    }
    Py_DECREF(rows);
    Py_DECREF(names);
    return out;
fail:
    Py_DECREF(rows);
    Py_DECREF(names);
    Py_XDECREF(out);
    return NULL;
}

/* --- the second pass: supersession and conflicts ------------------------------------------ */

static int check_columns(PyObject *const *columns, Py_ssize_t count, Py_ssize_t *size) {
    for (Py_ssize_t c = 0; c < count; c++) {
        if (!PyList_CheckExact(columns[c]) || (c && PyList_GET_SIZE(columns[c]) != PyList_GET_SIZE(columns[0]))) {
            PyErr_SetString(PyExc_ValueError, "the columns must be lists of one length");
            return -1;
        }
    }
    *size = PyList_GET_SIZE(columns[0]);
    return 0;
}

/* superseded(objects, keys, updated, watermarks) -> [(position, watermark)] where updated < the entity's watermark. */
static PyObject *superseded(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    Py_ssize_t size;
    if (nargs != 4 || !PyDict_CheckExact(args[3])) {
        PyErr_SetString(PyExc_TypeError, "superseded(objects, keys, updated, watermarks: dict)");
        return NULL;
    }
    if (check_columns(args, 3, &size) < 0) return NULL;
    PyObject *objects = args[0], *keys = args[1], *updated = args[2], *marks = args[3];
    PyObject *out = PyList_New(0);
    if (out == NULL) return NULL;
    for (Py_ssize_t i = 0; i < size && i < PyList_GET_SIZE(updated); i++) {
        PyObject *version = PyList_GET_ITEM(updated, i);
        if (version == Py_None) continue;
        PyObject *entity = PyTuple_Pack(2, PyList_GET_ITEM(objects, i), PyList_GET_ITEM(keys, i));
        if (entity == NULL) goto fail;
        PyObject *mark = PyDict_GetItemWithError(marks, entity);
        Py_DECREF(entity);
        if (mark == NULL) {
            if (PyErr_Occurred()) goto fail;
            continue;
        }
        Py_INCREF(mark);
        Py_INCREF(version);
        int older = PyObject_RichCompareBool(version, mark, Py_LT);
        Py_DECREF(version);
        PyObject *hit = older > 0 ? Py_BuildValue("(nO)", i, mark) : NULL;
        Py_DECREF(mark);
        if (older < 0) goto fail;
        if (older == 0) continue;
        if (hit == NULL || PyList_Append(out, hit) < 0) {
            Py_XDECREF(hit);
            goto fail;
        }
        Py_DECREF(hit);
    }
    return out;
fail:
    Py_DECREF(out);
    return NULL;
}

static PyObject *s_code;

/* 1 when a record takes part in conflicts (no reasons, or only `aging` ones), 0 when not, -1 on error. */
static int takes_part(PyObject *found, PyObject *aging) {
    if (found == Py_None) return 1;
    if (!PyList_CheckExact(found)) {
        PyErr_SetString(PyExc_TypeError, "reasons must be lists or None");
        return -1;
    }
    for (Py_ssize_t r = 0; r < PyList_GET_SIZE(found); r++) {
        PyObject *code = PyObject_GetAttr(PyList_GET_ITEM(found, r), s_code);
        if (code == NULL) return -1;
        Py_DECREF(code); /* compared by identity: the enum member lives on */
        if (code != aging) return 0;
    }
    return 1;
}

/* conflict_groups(objects, keys, reasons, aging) -> the positions of each entity seen more than once
   among the records that take part, in the order the groups form. */
static int same_value(PyObject *a, PyObject *b) {
    return a == b ? 1 : PyObject_RichCompareBool(a, b, Py_EQ);
}

static PyObject *conflict_groups(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    Py_ssize_t size;
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "conflict_groups(objects, keys, reasons, aging)");
        return NULL;
    }
    if (check_columns(args, 3, &size) < 0) return NULL;
    PyObject *objects = args[0], *keys = args[1], *reasons = args[2], *aging = args[3];
    /* An open-addressing table of first positions by entity hash: no tuple, int or dict entry per record. */
    size_t capacity = 16;
    while (capacity < (size_t)size * 2) capacity *= 2;
    size_t mask = capacity - 1;
    Py_ssize_t *slots = PyMem_Malloc(capacity * sizeof(Py_ssize_t));
    Py_hash_t *hashes = PyMem_Malloc(((size_t)size + 1) * sizeof(Py_hash_t));
    Py_ssize_t *group_of = PyMem_Malloc(((size_t)size + 1) * sizeof(Py_ssize_t));
    PyObject *groups = PyList_New(0);
    if (slots == NULL || hashes == NULL || group_of == NULL || groups == NULL) {
        if (groups != NULL) PyErr_NoMemory();
        goto fail;
    }
    for (size_t j = 0; j < capacity; j++) slots[j] = -1;
    for (Py_ssize_t i = 0; i < size; i++) {
        if (PyList_GET_SIZE(objects) != size || PyList_GET_SIZE(keys) != size || PyList_GET_SIZE(reasons) != size) {
            PyErr_SetString(PyExc_ValueError, "a column changed while the groups were made");
            goto fail;
        }
        int part = takes_part(PyList_GET_ITEM(reasons, i), aging);
        if (part < 0) goto fail;
        if (!part) continue;
        PyObject *obj = PyList_GET_ITEM(objects, i), *key = PyList_GET_ITEM(keys, i);
        Py_hash_t ho = PyObject_Hash(obj), hk = ho == -1 ? -1 : PyObject_Hash(key);
        if (hk == -1) goto fail;
        Py_hash_t h = (Py_hash_t)(((size_t)ho * 1000003u) ^ (size_t)hk);
        hashes[i] = h;
        group_of[i] = -1;
        size_t j = (size_t)h & mask;
        Py_ssize_t found = -1;
        while (slots[j] != -1) {
            Py_ssize_t other = slots[j];
            if (hashes[other] == h) {
                int same = same_value(PyList_GET_ITEM(objects, other), obj);
                if (same > 0) same = same_value(PyList_GET_ITEM(keys, other), key);
                if (same < 0) goto fail;
                if (same) {
                    found = other;
                    break;
                }
            }
            j = (j + 1) & mask;
        }
        if (found == -1) {
            slots[j] = i;
            continue;
        }
        PyObject *position = PyLong_FromSsize_t(i);
        if (position == NULL) goto fail;
        int failed;
        if (group_of[found] == -1) {
            PyObject *members = PyList_New(2), *head = PyLong_FromSsize_t(found);
            failed = members == NULL || head == NULL;
            if (!failed) {
                PyList_SET_ITEM(members, 0, head);
                PyList_SET_ITEM(members, 1, Py_NewRef(position));
                group_of[found] = PyList_GET_SIZE(groups);
                failed = PyList_Append(groups, members) < 0;
            } else {
                Py_XDECREF(head);
            }
            Py_XDECREF(members);
        } else {
            failed = PyList_Append(PyList_GET_ITEM(groups, group_of[found]), position) < 0;
        }
        Py_DECREF(position);
        if (failed) goto fail;
    }
    PyMem_Free(slots);
    PyMem_Free(hashes);
    PyMem_Free(group_of);
    return groups;
fail:
    PyMem_Free(slots);
    PyMem_Free(hashes);
    PyMem_Free(group_of);
    Py_XDECREF(groups);
    return NULL;
}

/* all_identical(records) -> whether every copy carries equal fields of equal types and equal content;
   None when a record is not a dict (Python decides). RecursionError and KeyError mean False. */
static PyObject *all_identical(PyObject *module, PyObject *group) {
    if (!PyList_CheckExact(group) || PyList_GET_SIZE(group) == 0) {
        PyErr_SetString(PyExc_TypeError, "all_identical takes a non-empty list of records");
        return NULL;
    }
    PyObject *copies = PySequence_Tuple(group);
    if (copies == NULL) return NULL;
    Py_ssize_t count = PyTuple_GET_SIZE(copies);
    PyObject *result = NULL, *fields = NULL, *content = NULL, *names = NULL;
    for (Py_ssize_t i = 0; i < count; i++) {
        if (!PyDict_CheckExact(PyTuple_GET_ITEM(copies, i))) {
            result = Py_NewRef(Py_None);
            goto done;
        }
    }
    PyObject *record = PyTuple_GET_ITEM(copies, 0);
    fields = PyDict_GetItemWithError(record, s_fields);
    if (fields == NULL && PyErr_Occurred()) goto done;
    fields = Py_NewRef(fields != NULL ? fields : Py_None);
    content = PyDict_GetItemWithError(record, s_content);
    if (content == NULL && PyErr_Occurred()) goto done;
    content = Py_NewRef(content != NULL ? content : Py_None);
    if (fields != Py_None && !PyDict_CheckExact(fields)) { /* Python's truth, items() and indexing decide */
        result = Py_NewRef(Py_None);
        goto done;
    }
    if (fields != Py_None && PyDict_GET_SIZE(fields) > 0) {
        names = PyDict_Items(fields);
        if (names == NULL) goto done;
    }
    int same = 1;
    for (Py_ssize_t i = 1; same && i < count; i++) {
        PyObject *other = PyTuple_GET_ITEM(copies, i);
        PyObject *theirs = PyDict_GetItemWithError(other, s_fields);
        if (theirs == NULL && PyErr_Occurred()) goto error;
        theirs = Py_NewRef(theirs != NULL ? theirs : Py_None);
        PyObject *their_content = PyDict_GetItemWithError(other, s_content);
        if (their_content == NULL && PyErr_Occurred()) {
            Py_DECREF(theirs);
            goto error;
        }
        their_content = Py_NewRef(their_content != NULL ? their_content : Py_None);
        int equal = PyObject_RichCompareBool(theirs, fields, Py_NE);
        if (equal >= 0) equal = !equal;
        if (equal > 0) {
            equal = PyObject_RichCompareBool(their_content, content, Py_NE);
            if (equal >= 0) equal = !equal;
        }
        Py_DECREF(their_content);
        if (equal > 0 && names != NULL) {
            /* fields == theirs as dicts, so theirs is a mapping holding every name */
            for (Py_ssize_t n = 0; equal > 0 && n < PyList_GET_SIZE(names); n++) {
                PyObject *item = PyList_GET_ITEM(names, n);
                PyObject *value = PyObject_GetItem(theirs, PyTuple_GET_ITEM(item, 0));
                if (value == NULL) {
                    equal = -1;
                    break;
                }
                equal = Py_TYPE(value) == Py_TYPE(PyTuple_GET_ITEM(item, 1));
                Py_DECREF(value);
            }
        }
        Py_DECREF(theirs);
        if (equal < 0) goto error;
        same = equal;
    }
    result = PyBool_FromLong(same);
    goto done;
error:
    if (PyErr_ExceptionMatches(PyExc_RecursionError) || PyErr_ExceptionMatches(PyExc_KeyError)) {
        PyErr_Clear();
        result = Py_NewRef(Py_False);
    }
done:
    Py_XDECREF(fields);
    Py_XDECREF(content);
    Py_XDECREF(names);
    Py_DECREF(copies);
    return result;
}

/* owner_versions(objects, keys, sources, updated, actions, owners, block) -> {(object, key): newest updated_at}
   among the records the check did not block that came from their object's owner. */
static PyObject *owner_versions(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    Py_ssize_t size;
    if (nargs != 7 || !PyDict_CheckExact(args[5])) {
        PyErr_SetString(PyExc_TypeError, "owner_versions(objects, keys, sources, updated, actions, owners: dict, block)");
        return NULL;
    }
    if (check_columns(args, 5, &size) < 0) return NULL;
    PyObject *objects = args[0], *keys = args[1], *sources = args[2], *updated = args[3], *actions = args[4],
             *owners = args[5], *block = args[6];
    PyObject *learned = PyDict_New();
    if (learned == NULL) return NULL;
    for (Py_ssize_t i = 0; i < size; i++) {
        if (PyList_GET_SIZE(objects) != size || PyList_GET_SIZE(updated) != size || PyList_GET_SIZE(actions) != size ||
            PyList_GET_SIZE(sources) != size || PyList_GET_SIZE(keys) != size) {
            PyErr_SetString(PyExc_ValueError, "a column changed while owner versions were read");
            goto fail;
        }
        PyObject *version = PyList_GET_ITEM(updated, i), *obj = PyList_GET_ITEM(objects, i);
        if (version == Py_None || PyList_GET_ITEM(actions, i) == block || obj == Py_None) continue;
        PyObject *owner = PyDict_GetItemWithError(owners, obj);
        if (owner == NULL) {
            if (PyErr_Occurred()) goto fail;
            continue;
        }
        int other = PyObject_RichCompareBool(owner, PyList_GET_ITEM(sources, i), Py_NE);
        if (other < 0) goto fail;
        if (other) continue;
        PyObject *entity = PyTuple_Pack(2, obj, PyList_GET_ITEM(keys, i));
        if (entity == NULL) goto fail;
        Py_INCREF(version);
        PyObject *known = PyDict_GetItemWithError(learned, entity);
        int newer = known == NULL ? (PyErr_Occurred() ? -1 : 1) : PyObject_RichCompareBool(version, known, Py_GT);
        int failed = newer < 0 || (newer > 0 && PyDict_SetItem(learned, entity, version) < 0);
        Py_DECREF(version);
        Py_DECREF(entity);
        if (failed) goto fail;
    }
    return learned;
fail:
    Py_DECREF(learned);
    return NULL;
}

/* fold(reasons, aging, allow, warn, block) -> (actions, reasons as tuples): the most severe action of each
   record's reasons (none: allow; only aging: warn; any other: block). */
static PyObject *fold(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 5 || !PyList_CheckExact(args[0])) {
        PyErr_SetString(PyExc_TypeError, "fold(reasons: list, aging, allow, warn, block)");
        return NULL;
    }
    PyObject *reasons = args[0], *aging = args[1], *allow = args[2], *warn = args[3], *block = args[4];
    Py_ssize_t size = PyList_GET_SIZE(reasons);
    PyObject *actions = PyList_New(size), *tuples = PyList_New(size), *empty = PyTuple_New(0);
    if (actions == NULL || tuples == NULL || empty == NULL) goto fail;
    for (Py_ssize_t i = 0; i < size; i++) {
        if (PyList_GET_SIZE(reasons) != size) {
            PyErr_SetString(PyExc_ValueError, "the reasons changed while they were folded");
            goto fail;
        }
        PyObject *found = PyList_GET_ITEM(reasons, i), *action = allow, *kept;
        if (found == Py_None) {
            kept = Py_NewRef(empty);
        } else {
            if (!PyList_CheckExact(found)) {
                PyErr_SetString(PyExc_TypeError, "reasons must be lists or None");
                goto fail;
            }
            kept = PyList_AsTuple(found);
            if (kept == NULL) goto fail;
            for (Py_ssize_t r = 0; r < PyTuple_GET_SIZE(kept); r++) {
                PyObject *code = PyObject_GetAttr(PyTuple_GET_ITEM(kept, r), s_code);
                if (code == NULL) {
                    Py_DECREF(kept);
                    goto fail;
                }
                Py_DECREF(code); /* compared by identity: the enum member lives on */
                if (code != aging) {
                    action = block;
                    break;
                }
                action = warn;
            }
        }
        PyList_SET_ITEM(tuples, i, kept);
        PyList_SET_ITEM(actions, i, Py_NewRef(action));
    }
    Py_DECREF(empty);
    PyObject *out = PyTuple_Pack(2, actions, tuples);
    Py_DECREF(actions);
    Py_DECREF(tuples);
    return out;
fail:
    Py_XDECREF(actions);
    Py_XDECREF(tuples);
    Py_XDECREF(empty);
    return NULL;
}

/* members_by_object(objects, fields, wanted, skip) -> {name: (positions, fields rows)} for each wanted
   object name, in record order; positions in `skip` (a set) are left out. */
static PyObject *members_by_object(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    Py_ssize_t size;
    if (nargs != 4 || !PyTuple_CheckExact(args[2]) || !PyAnySet_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError, "members_by_object(objects, fields, wanted: tuple, skip: set)");
        return NULL;
    }
    if (check_columns(args, 2, &size) < 0) return NULL;
    PyObject *objects = args[0], *fields = args[1], *wanted = args[2], *skip = args[3];
    int skipping = PySet_GET_SIZE(skip) > 0;
    PyObject *out = PyDict_New();
    if (out == NULL) return NULL;
    for (Py_ssize_t w = 0; w < PyTuple_GET_SIZE(wanted); w++) {
        PyObject *pair = Py_BuildValue("([][])");
        if (pair == NULL || PyDict_SetItem(out, PyTuple_GET_ITEM(wanted, w), pair) < 0) {
            Py_XDECREF(pair);
            goto fail;
        }
        Py_DECREF(pair);
    }
    for (Py_ssize_t i = 0; i < size; i++) {
        if (PyList_GET_SIZE(objects) != size || PyList_GET_SIZE(fields) != size) {
            PyErr_SetString(PyExc_ValueError, "a column changed while members were gathered");
            goto fail;
        }
        PyObject *obj = PyList_GET_ITEM(objects, i);
        if (obj == Py_None) continue;
        PyObject *pair = PyDict_GetItemWithError(out, obj);
        if (pair == NULL) {
            if (PyErr_Occurred()) goto fail;
            continue;
        }
        PyObject *position = PyLong_FromSsize_t(i);
        if (position == NULL) goto fail;
        int left_out = skipping ? PySet_Contains(skip, position) : 0;
        int failed = left_out < 0 || (!left_out && (PyList_Append(PyTuple_GET_ITEM(pair, 0), position) < 0 ||
                                                    PyList_Append(PyTuple_GET_ITEM(pair, 1), PyList_GET_ITEM(fields, i)) < 0));
        Py_DECREF(position);
        if (failed) goto fail;
    }
    return out;
fail:
    Py_DECREF(out);
    return NULL;
}

/* all_storable(values) -> True when no text in the list holds a NUL or a lone surrogate (what a database
   cannot store), False when one does, None when an item is neither text nor None (Python decides). */
static PyObject *all_storable(PyObject *module, PyObject *values) {
    if (!PyList_CheckExact(values)) Py_RETURN_NONE;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(values); i++) {
        PyObject *value = PyList_GET_ITEM(values, i);
        if (value == Py_None) continue;
        if (!PyUnicode_Check(value)) Py_RETURN_NONE;
        Py_ssize_t length = PyUnicode_GET_LENGTH(value);
        if (length == 0) continue;
        if (PyUnicode_IS_ASCII(value)) {
            if (memchr(PyUnicode_1BYTE_DATA(value), 0, (size_t)length) != NULL) Py_RETURN_FALSE;
            continue;
        }
        Py_ssize_t nul = PyUnicode_FindChar(value, 0, 0, length, 1);
        if (nul == -2) return NULL;
        if (nul >= 0) Py_RETURN_FALSE;
        PyObject *encoded = PyUnicode_AsEncodedString(value, "utf-8", "strict");
        if (encoded == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) return NULL;
            PyErr_Clear(); /* a lone surrogate */
            Py_RETURN_FALSE;
        }
        Py_DECREF(encoded);
    }
    Py_RETURN_TRUE;
}

/* --- tallies ------------------------------------------------------------------------------ */

#define MAX_BUCKETS 64

typedef struct {
    PyObject *source, *object, *reasons, *age_max; /* strong references */
    Py_ssize_t records, allowed, warned, blocked, buckets[MAX_BUCKETS];
    double age_sum;
} Point;

static PyObject *s_value;

/* tally(sources, objects, actions, ages, reasons, bounds, block, warn) -> per integration point, first seen
   first: (source, object, records, allowed, warned, blocked, {code: records}, buckets, age_max, age_sum).
   None when an age is neither a float nor None (Python decides). */
static PyObject *tally(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    Py_ssize_t size;
    if (nargs != 8 || !PyTuple_CheckExact(args[5]) || PyTuple_GET_SIZE(args[5]) + 1 > MAX_BUCKETS) {
        PyErr_SetString(PyExc_TypeError, "tally(sources, objects, actions, ages, reasons, bounds: tuple, block, warn)");
        return NULL;
    }
    if (check_columns(args, 5, &size) < 0) return NULL;
    PyObject *sources = args[0], *objects = args[1], *actions = args[2], *ages = args[3], *reasons = args[4],
             *block = args[6], *warn = args[7];
    Py_ssize_t nbounds = PyTuple_GET_SIZE(args[5]);
    double bounds[MAX_BUCKETS];
    for (Py_ssize_t b = 0; b < nbounds; b++) {
        bounds[b] = PyFloat_AsDouble(PyTuple_GET_ITEM(args[5], b));
        if (bounds[b] == -1.0 && PyErr_Occurred()) return NULL;
    }
    for (Py_ssize_t i = 0; i < size; i++) {
        PyObject *age = PyList_GET_ITEM(ages, i);
        if (age != Py_None && !PyFloat_CheckExact(age)) Py_RETURN_NONE;
    }
    Point *points = NULL;
    Py_ssize_t count = 0, capacity = 0;
    PyObject *index = PyDict_New(), *out = NULL; /* source -> {object -> position in points} */
    if (index == NULL) return NULL;
    for (Py_ssize_t i = 0; i < size; i++) {
        PyObject *source = PyList_GET_ITEM(sources, i), *obj = PyList_GET_ITEM(objects, i);
        PyObject *inner = PyDict_GetItemWithError(index, source);
        if (inner == NULL) {
            if (PyErr_Occurred()) goto done;
            inner = PyDict_New();
            if (inner == NULL || PyDict_SetItem(index, source, inner) < 0) {
                Py_XDECREF(inner);
                goto done;
            }
            Py_DECREF(inner); /* the index holds it */
        }
        PyObject *where = PyDict_GetItemWithError(inner, obj);
        Py_ssize_t at;
        if (where == NULL) {
            if (PyErr_Occurred()) goto done;
            if (count == capacity) {
                Py_ssize_t grown = capacity ? capacity * 2 : 8;
                Point *more = PyMem_Realloc(points, (size_t)grown * sizeof(Point));
                if (more == NULL) {
                    PyErr_NoMemory();
                    goto done;
                }
                points = more;
                capacity = grown;
            }
            Point *p = &points[count];
            memset(p, 0, sizeof(Point));
            p->source = Py_NewRef(source);
            p->object = Py_NewRef(obj);
            p->age_max = Py_NewRef(Py_None);
            at = count++;
            p->reasons = PyDict_New();
            PyObject *position = PyLong_FromSsize_t(at);
            if (p->reasons == NULL || position == NULL || PyDict_SetItem(inner, obj, position) < 0) {
                Py_XDECREF(position);
                goto done;
            }
            Py_DECREF(position);
        } else {
            at = PyLong_AsSsize_t(where);
        }
        Point *p = &points[at];
        p->records++;
        PyObject *action = PyList_GET_ITEM(actions, i);
        if (action == block) p->blocked++;
        else if (action == warn) p->warned++;
        else p->allowed++;
        PyObject *found = PyList_GET_ITEM(reasons, i);
        if (found != Py_None && PyObject_IsTrue(found)) {
            PyObject *seen = PySequence_Tuple(found), *codes = PyList_New(0);
            if (seen == NULL || codes == NULL) {
                Py_XDECREF(seen);
                Py_XDECREF(codes);
                goto done;
            }
            int failed = 0;
            for (Py_ssize_t r = 0; !failed && r < PyTuple_GET_SIZE(seen); r++) {
                PyObject *code = PyObject_GetAttr(PyTuple_GET_ITEM(seen, r), s_code);
                PyObject *value = code != NULL ? PyObject_GetAttr(code, s_value) : NULL;
                Py_XDECREF(code);
                if (value == NULL) {
                    failed = 1;
                    break;
                }
                int known = PySequence_Contains(codes, value); /* a record counts once per code */
                if (known < 0 || (!known && PyList_Append(codes, value) < 0)) failed = 1;
                if (!failed && !known) {
                    PyObject *sofar = PyDict_GetItemWithError(p->reasons, value);
                    Py_ssize_t now = sofar != NULL ? PyLong_AsSsize_t(sofar) + 1 : 1;
                    PyObject *number = PyErr_Occurred() ? NULL : PyLong_FromSsize_t(now);
                    failed = number == NULL || PyDict_SetItem(p->reasons, value, number) < 0;
                    Py_XDECREF(number);
                }
                Py_DECREF(value);
            }
            Py_DECREF(seen);
            Py_DECREF(codes);
            if (failed) goto done;
        } else if (PyErr_Occurred()) {
            goto done;
        }
        PyObject *age = PyList_GET_ITEM(ages, i);
        if (age != Py_None) {
            double years = PyFloat_AS_DOUBLE(age);
            Py_ssize_t bucket = 0;
            while (bucket < nbounds && bounds[bucket] < years) bucket++; /* bisect_left */
            p->buckets[bucket]++;
            p->age_sum += years;
            if (p->age_max == Py_None || years > PyFloat_AS_DOUBLE(p->age_max)) Py_SETREF(p->age_max, Py_NewRef(age));
        }
    }
    out = PyList_New(count);
    if (out == NULL) goto done;
    for (Py_ssize_t t = 0; t < count; t++) {
        Point *p = &points[t];
        PyObject *buckets = PyList_New(nbounds + 1);
        if (buckets == NULL) goto drop;
        for (Py_ssize_t b = 0; b <= nbounds; b++) {
            PyObject *number = PyLong_FromSsize_t(p->buckets[b]);
            if (number == NULL) {
                Py_DECREF(buckets);
                goto drop;
            }
            PyList_SET_ITEM(buckets, b, number);
        }
        PyObject *row = Py_BuildValue("(OOnnnnONOd)", p->source, p->object, p->records, p->allowed, p->warned,
                                      p->blocked, p->reasons, buckets, p->age_max, p->age_sum);
        if (row == NULL) goto drop;
        PyList_SET_ITEM(out, t, row);
    }
    goto done;
drop:
    Py_CLEAR(out);
done:
    for (Py_ssize_t t = 0; t < count; t++) {
        Py_XDECREF(points[t].source);
        Py_XDECREF(points[t].object);
        Py_XDECREF(points[t].reasons);
        Py_XDECREF(points[t].age_max);
    }
    PyMem_Free(points);
    Py_DECREF(index);
    return out;
}

/* --- lineage rows ------------------------------------------------------------------------- */

enum {
    ROW_IDS, ROW_OBJECTS, ROW_KEYS, ROW_SOURCES, ROW_OBSERVED, ROW_UPDATED, ROW_RECORDS, ROW_AGES, ROW_ACTIONS,
    ROW_REASONS, ROW_COLUMNS
};

typedef struct {
    PyObject *stamp, *stamps;    /* datetime -> stored text (None: as they are), and its memo */
    PyObject *blake2b, *digest_size, *content_hash, *words, *actions, *dumps, *sort_keys;
} Rows;

/* An action's stored value: looked up by identity among (member, value) pairs, else its `value`. */
static PyObject *action_value(Rows *rw, PyObject *action) {
    for (Py_ssize_t a = 0; a < PyTuple_GET_SIZE(rw->actions); a++) {
        PyObject *pair = PyTuple_GET_ITEM(rw->actions, a);
        if (PyTuple_CheckExact(pair) && PyTuple_GET_SIZE(pair) == 2 && PyTuple_GET_ITEM(pair, 0) == action)
            return Py_NewRef(PyTuple_GET_ITEM(pair, 1));
    }
    return PyObject_GetAttrString(action, "value");
}

static PyObject *s_hexdigest;

/* A timestamp as the store keeps it: a new reference. */
static PyObject *stored_time(Rows *rw, PyObject *moment) {
    if (moment == Py_None || rw->stamp == Py_None) return Py_NewRef(moment);
    PyObject *text = PyDict_GetItemWithError(rw->stamps, moment);
    if (text != NULL) return Py_NewRef(text);
    if (PyErr_Occurred()) return NULL;
    text = PyObject_CallOneArg(rw->stamp, moment);
    if (text != NULL && PyDict_SetItem(rw->stamps, moment, text) < 0) Py_CLEAR(text);
    return text;
}

/* content_hash(record): blake2b-128 of the content text when the record carries one, else the Python twin. */
static PyObject *hash_of(Rows *rw, PyObject *record) {
    if (!PyDict_CheckExact(record)) return PyObject_CallOneArg(rw->content_hash, record);
    PyObject *content = PyDict_GetItemWithError(record, s_content), *data;
    if (content == NULL && PyErr_Occurred()) return NULL;
    if (content != NULL && PyUnicode_CheckExact(content)) {
        data = PyUnicode_AsEncodedString(content, "utf-8", "surrogatepass");
    } else if (content != NULL && content != Py_None && PyUnicode_Check(content)) {
        return PyObject_CallOneArg(rw->content_hash, record); /* a str subclass: the twin decides */
    } else {
        PyObject *fields = PyDict_GetItemWithError(record, s_fields);
        if (fields == NULL && PyErr_Occurred()) return NULL;
        if (fields == NULL || fields == Py_None || (PyDict_CheckExact(fields) && PyDict_GET_SIZE(fields) == 0))
            Py_RETURN_NONE;
        if (!PyDict_CheckExact(fields)) return PyObject_CallOneArg(rw->content_hash, record);
        PyObject *call_args = PyTuple_Pack(1, fields);
        if (call_args == NULL) return NULL;
        data = PyObject_Call(rw->dumps, call_args, rw->sort_keys); /* orjson.dumps(fields, option=OPT_SORT_KEYS) */
        Py_DECREF(call_args);
        if (data == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_TypeError)) return NULL;
            PyErr_Clear(); /* what orjson refuses (big ints, odd keys): the twin's way down */
            return PyObject_CallOneArg(rw->content_hash, record);
        }
    }
    if (data == NULL) return NULL;
    PyObject *call_args = PyTuple_Pack(1, data);
    Py_DECREF(data);
    if (call_args == NULL) return NULL;
    PyObject *hasher = PyObject_Call(rw->blake2b, call_args, rw->digest_size);
    Py_DECREF(call_args);
    if (hasher == NULL) return NULL;
    PyObject *hex = PyObject_CallMethodNoArgs(hasher, s_hexdigest);
    Py_DECREF(hasher);
    return hex;
}

static PyObject *s_detail, *s_comma;

/* The stored codes and explanations of a tuple of reasons whose details are all dicts: the codes joined
   (ReasonCode members are their text), orjson's JSON of the dataclasses. 0 with *codes NULL when the
   Python words() must decide (another shape, or what orjson refuses), -1 on error. */
static int plain_words(Rows *rw, PyObject *found, PyObject **codes, PyObject **explained) {
    *codes = *explained = NULL;
    if (!PyTuple_CheckExact(found)) return 0;
    Py_ssize_t count = PyTuple_GET_SIZE(found);
    PyObject *names = PyList_New(count);
    if (names == NULL) return -1;
    for (Py_ssize_t r = 0; r < count; r++) {
        PyObject *reason = PyTuple_GET_ITEM(found, r);
        PyObject *detail = PyObject_GetAttr(reason, s_detail);
        int plain = detail != NULL && PyDict_CheckExact(detail);
        Py_XDECREF(detail);
        PyObject *code = plain ? PyObject_GetAttr(reason, s_code) : NULL;
        if (code == NULL || !PyUnicode_Check(code)) {
            Py_XDECREF(code);
            Py_DECREF(names);
            if (PyErr_Occurred()) {
                if (!PyErr_ExceptionMatches(PyExc_AttributeError)) return -1;
                PyErr_Clear();
            }
            return 0;
        }
        PyList_SET_ITEM(names, r, code);
    }
    PyObject *joined = PyUnicode_Join(s_comma, names);
    Py_DECREF(names);
    if (joined == NULL) return -1;
    PyObject *data = PyObject_CallOneArg(rw->dumps, found);
    if (data == NULL) {
        Py_DECREF(joined);
        if (!PyErr_ExceptionMatches(PyExc_TypeError)) return -1;
        PyErr_Clear(); /* what orjson refuses: words() takes the slow way */
        return 0;
    }
    PyObject *text = PyBytes_CheckExact(data) ? PyUnicode_DecodeUTF8(PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data), "strict") : NULL;
    Py_DECREF(data);
    if (text == NULL) {
        Py_DECREF(joined);
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "dumps() must return bytes");
        return -1;
    }
    *codes = joined;
    *explained = text;
    return 0;
}

/* record_rows(run_id, columns, stamp, blake2b, digest_size, content_hash, words, actions, dumps,
   sort_keys) -> the run_records rows. */
static PyObject *record_rows(PyObject *module, PyObject *args) {
    PyObject *run_id, *columns;
    Rows rw;
    if (!PyArg_ParseTuple(args, "UO!OOO!OOO!OO!:record_rows", &run_id, &PyTuple_Type, &columns, &rw.stamp,
                          &rw.blake2b, &PyDict_Type, &rw.digest_size, &rw.content_hash, &rw.words, &PyTuple_Type,
                          &rw.actions, &rw.dumps, &PyDict_Type, &rw.sort_keys))
        return NULL;
    if (PyTuple_GET_SIZE(columns) != ROW_COLUMNS) {
        PyErr_Format(PyExc_ValueError, "columns must be %d lists", ROW_COLUMNS);
        return NULL;
    }
    PyObject *col[ROW_COLUMNS];
    for (int c = 0; c < ROW_COLUMNS; c++) col[c] = PyTuple_GET_ITEM(columns, c);
    Py_ssize_t size;
    if (check_columns(col, ROW_COLUMNS, &size) < 0) return NULL;
    rw.stamps = PyDict_New();
    PyObject *rows = rw.stamps != NULL ? PyList_New(size) : NULL;
    if (rows == NULL) goto fail;
    for (Py_ssize_t i = 0; i < size; i++) {
        if (PyList_GET_SIZE(col[ROW_IDS]) != size) { /* a column changed length under a callback */
            PyErr_SetString(PyExc_ValueError, "a column changed while the rows were built");
            goto fail;
        }
        PyObject *row = PyTuple_New(13);
        if (row == NULL) goto fail;
        PyList_SET_ITEM(rows, i, row);
        PyObject *position = PyLong_FromSsize_t(i);
        PyObject *observed = stored_time(&rw, PyList_GET_ITEM(col[ROW_OBSERVED], i));
        PyObject *updated = observed != NULL ? stored_time(&rw, PyList_GET_ITEM(col[ROW_UPDATED], i)) : NULL;
        PyObject *record = Py_NewRef(PyList_GET_ITEM(col[ROW_RECORDS], i));
        PyObject *hash = updated != NULL ? hash_of(&rw, record) : NULL;
        Py_DECREF(record);
        PyObject *action = hash != NULL ? action_value(&rw, PyList_GET_ITEM(col[ROW_ACTIONS], i)) : NULL;
        PyObject *found = PyList_GET_ITEM(col[ROW_REASONS], i), *codes = NULL, *explained = NULL;
        if (action != NULL) {
            int any = PyObject_IsTrue(found);
            if (any > 0 && plain_words(&rw, found, &codes, &explained) < 0) {
                any = -1;
            } else if (any > 0 && codes == NULL) {
                PyObject *said = PyObject_CallOneArg(rw.words, found);
                if (said != NULL && PyTuple_CheckExact(said) && PyTuple_GET_SIZE(said) == 2) {
                    codes = Py_NewRef(PyTuple_GET_ITEM(said, 0));
                    explained = Py_NewRef(PyTuple_GET_ITEM(said, 1));
                } else if (said != NULL) {
                    PyErr_SetString(PyExc_TypeError, "words() must return (codes, explanations)");
                }
                Py_XDECREF(said);
            } else if (any == 0) {
                codes = PyUnicode_FromStringAndSize("", 0);
                explained = Py_NewRef(Py_None);
            }
        }
        if (position == NULL || observed == NULL || updated == NULL || hash == NULL || action == NULL || codes == NULL ||
            explained == NULL) {
            Py_XDECREF(position);
            Py_XDECREF(observed);
            Py_XDECREF(updated);
            Py_XDECREF(hash);
            Py_XDECREF(action);
            Py_XDECREF(codes);
            Py_XDECREF(explained);
            goto fail;
        }
        PyObject *cells[13] = {Py_NewRef(run_id), position, Py_NewRef(PyList_GET_ITEM(col[ROW_IDS], i)),
                               Py_NewRef(PyList_GET_ITEM(col[ROW_OBJECTS], i)),
                               Py_NewRef(PyList_GET_ITEM(col[ROW_KEYS], i)),
                               Py_NewRef(PyList_GET_ITEM(col[ROW_SOURCES], i)), observed, updated, hash,
                               Py_NewRef(PyList_GET_ITEM(col[ROW_AGES], i)), action, codes, explained};
        for (int c = 0; c < 13; c++) PyTuple_SET_ITEM(row, c, cells[c]);
    }
    Py_DECREF(rw.stamps);
    return rows;
fail:
    Py_XDECREF(rw.stamps);
    Py_XDECREF(rows);
    return NULL;
}

/* --- the floor ---------------------------------------------------------------------------- */

/* read_members(records, names, nested, nested_names) -> how many values were found: reads each named
   member of every record once, row by row, and each nested_names member of its `nested` dict. Decides
   nothing: bench/bench_floor.py times it as the least any check of these records must do. */
static PyObject *read_members(PyObject *module, PyObject *args) {
    PyObject *records, *names, *nested, *nested_names;
    if (!PyArg_ParseTuple(args, "O!O!UO!:read_members", &PyList_Type, &records, &PyTuple_Type, &names, &nested,
                          &PyTuple_Type, &nested_names))
        return NULL;
    Py_ssize_t found = 0;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(records); i++) {
        PyObject *record = PyList_GET_ITEM(records, i);
        if (!PyDict_CheckExact(record)) continue;
        for (Py_ssize_t n = 0; n < PyTuple_GET_SIZE(names); n++) {
            PyObject *value = PyDict_GetItemWithError(record, PyTuple_GET_ITEM(names, n));
            if (value == NULL && PyErr_Occurred()) return NULL;
            found += value != NULL;
        }
        PyObject *inner = PyDict_GetItemWithError(record, nested);
        if (inner == NULL && PyErr_Occurred()) return NULL;
        if (inner == NULL || !PyDict_CheckExact(inner)) continue;
        for (Py_ssize_t n = 0; n < PyTuple_GET_SIZE(nested_names); n++) {
            PyObject *value = PyDict_GetItemWithError(inner, PyTuple_GET_ITEM(nested_names, n));
            if (value == NULL && PyErr_Occurred()) return NULL;
            found += value != NULL;
        }
    }
    return PyLong_FromSsize_t(found);
}

/* --- the module ----------------------------------------------------------------------------- */

static PyMethodDef methods[] = {
    {"canonical_json", (PyCFunction)(void (*)(void))canonical_json, METH_FASTCALL,
     "canonical_json(mapping, exclude) -> bytes: sorted compact JSON in UTF-8, top-level members in exclude "
     "left out; raises Unsupported for anything but plain JSON data."},
    {"screen", screen, METH_VARARGS,
     "screen(records, limits, signing, skew, parsed, stamp, verify, age_reason, columns, digest, "
     "unsigned_members) -> positions the check modules must look at."},
    {"field_values", (PyCFunction)(void (*)(void))field_values, METH_FASTCALL,
     "field_values(rows, names) -> one list per name of each row's value (None when missing)."},
    {"superseded", (PyCFunction)(void (*)(void))superseded, METH_FASTCALL,
     "superseded(objects, keys, updated, watermarks) -> [(position, watermark)] of the copies older than it."},
    {"conflict_groups", (PyCFunction)(void (*)(void))conflict_groups, METH_FASTCALL,
     "conflict_groups(objects, keys, reasons, aging) -> positions of each entity seen twice among the "
     "records with no reason but aging."},
    {"record_rows", record_rows, METH_VARARGS,
     "record_rows(run_id, columns, stamp, blake2b, digest_size, content_hash, words, actions, dumps, sort_keys) "
     "-> the run_records rows."},
    {"read_members", read_members, METH_VARARGS,
     "read_members(records, names, nested, nested_names) -> values found; decides nothing (the bench's floor)."},
    {"owner_versions", (PyCFunction)(void (*)(void))owner_versions, METH_FASTCALL,
     "owner_versions(objects, keys, sources, updated, actions, owners, block) -> newest owner version per entity."},
    {"fold", (PyCFunction)(void (*)(void))fold, METH_FASTCALL,
     "fold(reasons, aging, allow, warn, block) -> (actions, reasons as tuples)."},
    {"members_by_object", (PyCFunction)(void (*)(void))members_by_object, METH_FASTCALL,
     "members_by_object(objects, fields, wanted, skip) -> {name: (positions, fields rows)}."},
    {"all_storable", all_storable, METH_O,
     "all_storable(values) -> True/False: no text holds a NUL or a lone surrogate; None when an item is not text."},
    {"tally", (PyCFunction)(void (*)(void))tally, METH_FASTCALL,
     "tally(sources, objects, actions, ages, reasons, bounds, block, warn) -> per integration point counts."},
    {"all_identical", all_identical, METH_O,
     "all_identical(records) -> True/False, or None when a record is not a dict."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "guard._native", "The hot loops of a check, in C.", -1,
                                        methods};

PyMODINIT_FUNC PyInit__native(void) {
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL) return NULL;
    Unsupported = PyErr_NewExceptionWithDoc("guard._native.Unsupported",
                                            "A value the C code hands back to Python to decide.", NULL, NULL);
    if (Unsupported == NULL || PyModule_AddObjectRef(module, "Unsupported", Unsupported) < 0) goto fail;
    struct {
        PyObject **slot;
        const char *text;
    } names[] = {{&s_id, "id"},         {&s_object, "object"},       {&s_key, "key"},
                 {&s_source, "source"}, {&s_observed_at, "observed_at"}, {&s_updated_at, "updated_at"},
                 {&s_lineage, "lineage"}, {&s_fields, "fields"},     {&s_signature, "signature"},
                 {&s_content, "content"}, {&s_system, "system"},     {&s_at, "at"},
                 {&s_code, "code"}, {&s_hexdigest, "hexdigest"}, {&s_value, "value"},
                 {&s_detail, "detail"}, {&s_comma, ","}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if ((*names[i].slot = PyUnicode_InternFromString(names[i].text)) == NULL) goto fail;
    }
    return module;
fail:
    Py_DECREF(module);
    return NULL;
}
