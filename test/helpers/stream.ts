// What the stream tests' publisher sends: message seq carries value(seq), so any process can
// compute the checksum of any set of seqs.
export function messageValue(seq: number): number {
  return ((seq * 2654435761) % 1000003) / 1000003;
}

export function checksumOf(seqs: Iterable<number>): number {
  let sum = 0;
  for (const s of seqs) sum += messageValue(s);
  return sum;
}
