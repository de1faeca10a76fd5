"""Packs ../shared/data/nb201/nats_tss_test_accuracy.csv into the embedded
tables under data/nb201 (standard library only). Run from the repo root."""
import csv, gzip, sys

src = sys.argv[1] if len(sys.argv) > 1 else '../shared/data/nb201/nats_tss_test_accuracy.csv'
ops = ['none', 'skip_connect', 'nor_conv_1x1', 'nor_conv_3x3', 'avg_pool_3x3']
rows = list(csv.DictReader(open(src)))
assert [int(r['index']) for r in rows] == list(range(len(rows)))


def digits(arch):
    return ''.join(str(ops.index(e.split('~')[0]))
                   for node in arch.strip('|').split('|+|') for e in node.split('|'))


with gzip.GzipFile('data/nb201/archs.txt.gz', 'wb', mtime=0) as f:
    f.write(''.join(digits(r['arch']) + '\n' for r in rows).encode())
with gzip.GzipFile('data/nb201/test_accuracy.csv.gz', 'wb', mtime=0) as f:
    f.write(b'index,cifar10,cifar100,imagenet16_120\n')
    for r in rows:
        f.write(('%s,%s,%s,%s\n' % (r['index'], r['cifar10'], r['cifar100'], r['imagenet16_120'])).encode())
