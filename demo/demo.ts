// `npm run demo`: what the library does, on this machine.
import { actorsDemo } from './actors.js';

await actorsDemo();
