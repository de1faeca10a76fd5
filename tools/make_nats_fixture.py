"""Writes tiny NATS-Bench 'simple' archives in the official format into
tests/fixtures/nats/, using the nats_bench package's own classes (pip install
nats_bench; not needed by rbflex or its tests), plus expected.json with the
values nats_bench's API returns for them.

  PYTHONPATH=<dir with nats_bench> python3 tools/make_nats_fixture.py
"""
import bz2, collections, json, os, pickle, random
from nats_bench.api_utils import ArchResults, ResultsCount

OUT = 'tests/fixtures/nats'
random.seed(7)


def dump(path, obj):
    with bz2.BZ2File(path, 'wb') as f:
        pickle.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL)


def result(name, arch, seed, epochs, params, flop, sets):
    train_accs = {e: random.uniform(10, 99) for e in range(epochs)}
    train_losses = {e: random.uniform(0, 3) for e in range(epochs)}
    r = ResultsCount(name, None, train_accs, train_losses, params, flop,
                     {'name': 'infer.tiny', 'arch_str': arch}, seed, epochs, [0.01, 0.012])
    r.update_train_info(train_accs, None, train_losses, None)
    r.reset_pseudo_train_times(1.5)
    accs, losses, times = {}, {}, {}
    for s in sets:
        for e in range(epochs):
            k = '{}@{}'.format(s, e)
            accs[k], losses[k], times[k] = random.uniform(10, 95), random.uniform(0, 3), 0.25
    r.update_eval(accs, losses, times)
    return r


def archive(name, archs, hps, datasets):
    root = os.path.join(OUT, name)
    os.makedirs(root, exist_ok=True)
    dump(os.path.join(root, 'meta.pickle.pbz2'), {'meta_archs': archs, 'arch2infos': {}, 'evaluated_indexes': []})
    expected = []
    for i, arch in enumerate(archs):
        per_hp = {}
        for hp, epochs in hps:
            a = ArchResults(i, arch)
            for ds, sets, seeds in datasets:
                for seed in seeds:
                    a.update(ds, seed, result(ds, arch, seed, epochs, 0.1 + i, 10.0 + i, sets))
            per_hp[hp] = a.state_dict()
        dump(os.path.join(root, '{:06d}.pickle.pbz2'.format(i)), per_hp)
        # what the nats_bench API reports, for the Rust test
        for hp, epochs in hps:
            a = ArchResults.create_from_state_dict(per_hp[hp])
            for ds, sets, seeds in datasets:
                for s in sets:
                    m = a.get_metrics(ds, s, is_random=False)
                    expected.append({'index': i, 'hp': hp, 'dataset': ds, 'set': s,
                                     'accuracy': m['accuracy'], 'loss': m['loss']})
                cost = a.get_compute_costs(ds)
                expected.append({'index': i, 'hp': hp, 'dataset': ds, 'params': cost['params'],
                                 'flops': cost['flops'], 'latency': cost['latency']})
    with open(os.path.join(root, 'expected.json'), 'w') as f:
        json.dump(expected, f, indent=1)


datasets = [('cifar10-valid', ['x-valid', 'ori-test'], [777, 888]),
            ('cifar10', ['ori-test'], [777, 888]),
            ('cifar100', ['x-valid', 'x-test', 'ori-test'], [777]),
            ('ImageNet16-120', ['x-valid', 'x-test', 'ori-test'], [777])]
archive('NATS-tss-v1_0-3ffb9-simple',
        ['|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|',
         '|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|',
         '|avg_pool_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|avg_pool_3x3~0|avg_pool_3x3~1|avg_pool_3x3~2|'],
        [('12', 12), ('200', 4)], datasets)
archive('NATS-sss-v1_0-50262-simple', ['8:8:8:8:8', '8:8:8:8:16'], [('01', 1), ('90', 3)], datasets)
