"""Parent-brand groups: sibling channels are one group in the folds, `[project] groups` wins, `memo data
check` lists merges."""

from typer.testing import CliRunner

from memo.cli import app
from memo.groups import brand_key, parent_groups
from memo.layouts import read_dataset
from memo.splits import grouped_kfold
from tests.test_data import make_videm, videm_row


def test_sibling_channels_of_one_brand_share_a_parent():
    names = [
        "Legal & General",
        "Legal & General Investment Management - LGIM",
        "HSBC UK",
        "HSBC",
        "Life at Capital Group",
        "Capital Group",
        "BNP Paribas Leasing Solutions UK",
        "BNP Paribas Asset Management",
        "Baillie Gifford UK",
        "Natixis Investment Managers US",
        "Natixis Investment Managers",
        "Goldman Sachs",
        "BlackRock",
        "Blackstone",
        "M&G Investments",
        "Capital One",
    ]
    parent, merges = parent_groups(names)
    assert parent["Legal & General Investment Management - LGIM"] == "Legal & General"
    assert parent["HSBC UK"] == "HSBC" and parent["Life at Capital Group"] == "Capital Group"
    assert (
        parent["BNP Paribas Leasing Solutions UK"] == parent["BNP Paribas Asset Management"]
    )  # no bare parent: still one
    assert parent["Natixis Investment Managers US"] == "Natixis Investment Managers"
    for alone in (
        "Goldman Sachs",
        "BlackRock",
        "Blackstone",
        "M&G Investments",
        "Capital One",
        "Baillie Gifford UK",
    ):
        assert parent[alone] == alone  # distinct brands (and a sibling-less channel) stay apart
    assert sorted(merges["HSBC"]) == ["HSBC", "HSBC UK"]
    assert brand_key("Life at Capital Group") == brand_key("Capital Group")


def test_explicit_groups_win_over_the_rule_and_follow_chains():
    parent, merges = parent_groups(
        ["Acme", "Acme UK", "Zeta Bank", "Other"], {"Zeta Bank": "Acme", "Other": "Zeta Bank"}
    )
    assert parent == {"Acme": "Acme", "Acme UK": "Acme", "Zeta Bank": "Acme", "Other": "Acme"}
    assert merges == {"Acme": ["Acme", "Acme UK", "Other", "Zeta Bank"]}


def test_folds_keep_a_parent_brand_on_one_side_and_channel_stays_for_the_cues(tmp_path):
    dev = [
        videm_row(i, brand)
        for i, brand in enumerate(
            ["Acme", "Acme UK", "Acme Asset Management", "Beta", "Gamma", "Delta"] * 3, 1
        )
    ]
    make_videm(tmp_path, dev_rows=dev, test_rows=[videm_row(100 + i, "Acme US") for i in range(3)])
    ds = read_dataset(tmp_path)
    table = ds.splits["dev"].table
    assert set(table["group"]) == {"Acme", "Beta", "Gamma", "Delta"}
    assert set(table["channel"]) == {"Acme", "Acme UK", "Acme Asset Management", "Beta", "Gamma", "Delta"}
    acme = table["channel"].str.startswith("Acme").to_numpy()
    for _, held in grouped_kfold(table["group"].to_numpy(), n_splits=3, seed=0):
        assert acme[held].sum() in (0, acme.sum())  # every Acme channel on one side
    assert any("Acme are in both dev and test" in p.message for p in ds.problems)  # across splits, by parent
    pinned = read_dataset(tmp_path, groups={"Beta": "Gamma"})
    assert set(pinned.splits["dev"].table["group"]) == {"Acme", "Gamma", "Delta"}


def test_data_check_lists_every_merge_and_where_each_name_is(tmp_path):
    dev = [videm_row(i, brand) for i, brand in enumerate(["Acme", "Acme UK", "Beta", "Gamma"] * 3, 1)]
    make_videm(
        tmp_path / "d", dev_rows=dev, test_rows=[videm_row(100 + i, "Acme Investments") for i in range(3)]
    )
    res = CliRunner().invoke(app, ["data", "check", str(tmp_path / "d")])
    assert "group 'Acme' joins 'Acme' (dev), 'Acme Investments' (test), 'Acme UK' (dev)" in res.output


def test_memento_style_ids_are_never_merged():
    import pandas as pd

    from memo.data import Dataset, Split, with_parent_groups

    t = pd.DataFrame({"group": ["v1", "v1 uk"]}, index=pd.Index(["v1", "v1 uk"], name="id"))
    ds = with_parent_groups(
        Dataset(None, "csv", {"dev": Split("dev", t, [], [], ["y"])}, ["y"], "id", "dev", None)
    )
    assert list(ds.splits["dev"].table["group"]) == ["v1", "v1 uk"] and ds.group_merges == {}
