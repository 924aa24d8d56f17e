"""admission.diff: jsonpatch's diff with shared subtrees skipped; applying it must give the mutated pod."""

import copy

import jsonpatch
from hypothesis import given, settings as hsettings, strategies as st

from localplane.kube_elector.reviews import pod
from webhook import admission, inject, settings

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=20,
)


@hsettings(max_examples=400, deadline=None)
@given(a=json_values, b=json_values)
def test_diff_of_unrelated_documents_applies(a, b):
    assert jsonpatch.apply_patch(copy.deepcopy(a), admission.diff(a, b)) == b


@hsettings(max_examples=300, deadline=None)
@given(doc=st.dictionaries(st.text(max_size=4), json_values, max_size=5), key=st.text(max_size=4), value=json_values)
def test_diff_of_copy_on_write_change_applies(doc, key, value):
    changed = {**doc, "spec": {**(doc.get("spec") if isinstance(doc.get("spec"), dict) else {}), key: value}}
    ops = admission.diff(doc, changed)
    assert jsonpatch.apply_patch(copy.deepcopy(doc), ops) == changed


def test_injection_patch_reproduces_the_mutated_pod_and_escapes_keys():
    original = pod(**{"metadata.annotations": {"elector.dev/inject": "true", "a/b~c": "1"},
                      "metadata.labels": {"x~/y": "2"}})
    mutated = inject.mutate(original, namespace="shop", namespace_opted_in=False, settings=settings.Settings()).pod
    ops = admission.diff(original, mutated)
    assert jsonpatch.apply_patch(copy.deepcopy(original), ops) == mutated
    assert {"op": "add", "path": "/metadata/annotations/elector.dev~1injected", "value": settings.VERSION} in ops
    assert all(op["op"] == "add" for op in ops)  # nothing of the pod's own is removed or replaced
    assert original == pod(**{"metadata.annotations": {"elector.dev/inject": "true", "a/b~c": "1"},
                              "metadata.labels": {"x~/y": "2"}})


@hsettings(max_examples=200, deadline=None)
@given(items=st.lists(json_values, max_size=6), front=st.lists(json_values, max_size=3),
       back=st.lists(json_values, max_size=3))
def test_items_put_around_a_shared_list_are_single_adds(items, front, back):
    doc = {"env": items}
    for changed in ({"env": [*front, *items]}, {"env": [*items, *back]}, {"env": copy.deepcopy([*front, *items])}):
        ops = admission.diff(doc, changed)
        assert jsonpatch.apply_patch(copy.deepcopy(doc), ops) == changed
