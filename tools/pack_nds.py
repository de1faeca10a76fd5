"""Packs the NDS json files (../shared/data/nds) into compact embedded tables:
data/nds/<file>.json.gz with, per record, the fields rbflex uses: net, params,
flops, min_test_top1 and the last test_ep_top1 (both top-1 ERROR in %)."""
import glob, gzip, json, os, sys

src = sys.argv[1] if len(sys.argv) > 1 else '../shared/data/nds'
for path in sorted(glob.glob(os.path.join(src, '*.json'))):
    data = json.load(open(path))
    if isinstance(data, dict):
        data = data['top'] + data['mid']
    out = [{'net': r['net'], 'params': r['params'], 'flops': r['flops'],
            'min_test_top1': r['min_test_top1'], 'last_test_top1': r['test_ep_top1'][-1]} for r in data]
    name = os.path.basename(path)
    with gzip.GzipFile(os.path.join('data/nds', name + '.gz'), 'wb', mtime=0) as f:
        f.write(json.dumps(out, separators=(',', ':')).encode())
    print(name, len(out))
