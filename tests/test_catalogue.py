"""The GPU catalogue: MIG geometry and instance facts (pure Python, no synth)."""

import pytest

from platform_config.catalogue import load_catalogue

catalogue = load_catalogue()


@pytest.mark.parametrize("layout", [
    {"3g.40gb": 1, "2g.20gb": 1, "1g.10gb": 2},  # the operator's all-balanced
    {"3g.40gb": 2},
    {"2g.20gb": 3, "1g.10gb": 1},
    {"1g.10gb": 7},
    {"7g.80gb": 1},
])
def test_layouts_that_fit_one_80gb_gpu_are_accepted(layout):
    assert catalogue.mig_layout_problem("A100-80GB", layout) is None
    assert catalogue.mig_layout_problem("H100-80GB", layout) is None


@pytest.mark.parametrize(("layout", "reason"), [
    ({"3g.40gb": 2, "1g.10gb": 1}, "needs 9 of 8 memory slices"),
    ({"4g.40gb": 2}, "holds 1 to 1 of 4g.40gb"),
    ({"1g.10gb": 8}, "holds 1 to 7 of 1g.10gb"),
    ({"4g.40gb": 1, "3g.40gb": 1, "1g.10gb": 1}, "needs 8 of 7 compute slices"),
    ({"1g.5gb": 1}, "1g.5gb do not exist on A100-80GB"),
])
def test_layouts_that_do_not_fit_are_refused_with_the_reason(layout, reason):
    problem = catalogue.mig_layout_problem("A100-80GB", layout)
    assert problem is not None
    assert reason in problem


def test_a_gpu_model_without_mig_profiles_refuses_every_layout():
    assert "no MIG profiles" in catalogue.mig_layout_problem("H200-141GB", {"1g.10gb": 1})


@pytest.mark.parametrize(("instance_type", "model", "gpus"), [
    ("p4d.24xlarge", "A100-40GB", 8),
    ("p4de.24xlarge", "A100-80GB", 8),
    ("p5.48xlarge", "H100-80GB", 8),
    ("p5.4xlarge", "H100-80GB", 1),
    ("p5e.48xlarge", "H200-141GB", 8),
])
def test_gpu_instance_types_carry_the_documented_gpus(instance_type, model, gpus):
    entry = catalogue.instance_types[instance_type]
    assert (entry.gpu_model, entry.gpus) == (model, gpus)


def test_every_gpu_instance_type_names_a_known_gpu_model():
    for name, entry in catalogue.instance_types.items():
        assert (entry.gpu_model in catalogue.gpu_models) if entry.is_gpu else entry.gpu_model is None, name


def _months_between(start, end) -> float:
    return (end.year - start.year) * 12 + (end.month - start.month) + (end.day - start.day) / 30


@pytest.mark.parametrize("version", catalogue.kubernetes_versions)
def test_the_eks_calendar_gives_14_months_of_standard_then_12_of_extended_support(version):
    """EKS: standard support for about 14 months after the EKS release, extended support for 12 more (AWS sets
    the exact days; they land within a week of the 14-month mark)."""
    release = catalogue.kubernetes_versions[version]
    assert abs(_months_between(release.released, release.end_of_standard_support) - 14) < 0.25
    assert _months_between(release.end_of_standard_support, release.end_of_extended_support) == 12


def test_the_calendar_is_ordered_oldest_first_by_release_date():
    releases = [r.released for r in catalogue.kubernetes_versions.values()]
    assert releases == sorted(releases)
