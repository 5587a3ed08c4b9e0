from cncf.selector import Selector, normalize, resolve

SERVICES = {"people": ["createPerson", "get"], "audit": ["get"]}


def test_names_ignore_case_dash_and_underscore():
    assert normalize("createPerson") == normalize("create-person") == normalize("CREATE_PERSON")
    r = resolve(SERVICES, None, "create-person")
    assert (r.service, r.operation) == ("people", "createPerson")


def test_service_may_be_omitted_only_when_unambiguous():
    r = resolve(SERVICES, None, "get")
    assert r.operation is None and r.ambiguous and r.candidates == ["audit.get", "people.get"]
    r = resolve(SERVICES, "People", "GET")
    assert (r.service, r.operation) == ("people", "get")


def test_unknown_lists_all_candidates():
    r = resolve(SERVICES, None, "delete")
    assert r.operation is None and not r.ambiguous and "people.createPerson" in r.candidates


def test_parse():
    assert Selector.parse("a.b") == Selector("a", None, "b")
    assert Selector.parse("a.b.c") == Selector("a", "b", "c")
    assert Selector.parse("a") is None and Selector.parse("a..b") is None
