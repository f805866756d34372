"""The profiles cached under models/handshakes/ must be what the model generates today."""

import json

import pytest

from ttlbsim.handshake.build import (MODEL_VERSION, cache_dir, cache_name, cached_configs, generate_profile,
                                    load_cached)
from ttlbsim.handshake import build_profile
from ttlbsim.scenario import TLSConfig

FILES = sorted(cache_dir().glob("*.json"))


def test_every_cached_config_has_a_file():
    names = {p.name for p in FILES}
    missing = [cache_name(t) for t in cached_configs() if cache_name(t) not in names]
    assert not missing, f"regenerate with ttlbsim.handshake.build.write_cache(): {missing[:3]}"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_cached_profile_has_not_drifted(path):
    data = json.loads(path.read_text())
    params = dict(data["params"])
    assert params.pop("model_version") == MODEL_VERSION
    fresh = generate_profile(TLSConfig(**params)).to_dict()
    for old, new in zip(data["flights"], fresh["flights"], strict=True):
        assert old == new, f"{path.name} drifted; if intended, bump MODEL_VERSION and run write_cache()"
    assert data["sizes"] == json.loads(json.dumps(fresh["sizes"]))


def test_build_profile_prefers_cache():
    tls = TLSConfig(kex="X25519MLKEM768", sig="mldsa44", cert_profile="webpki", client_profile="browser")
    cached = load_cached(tls)
    assert cached is not None
    assert build_profile(tls).flights == cached.flights
    assert load_cached(TLSConfig(kex="X25519MLKEM768", sig="mldsa44", hrr=True)) is None
