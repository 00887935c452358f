// argv: <storeName> <idHex>. Waits for the object with getAsync (no timeout), prints
// "waiting" then "got <data>", and neither closes the store nor calls process.exit: the
// process must end by itself once nothing is pending.
import { ObjectId } from '../../src/object-id.js';
import { ObjectStore } from '../../src/store.js';

const store = ObjectStore.open(process.argv[2]);
const id = ObjectId.fromHex(process.argv[3]);
store.getAsync(id).then((obj) => {
  process.stdout.write(`got ${obj?.data.toString()}\n`);
  obj?.release();
});
process.stdout.write('waiting\n');
