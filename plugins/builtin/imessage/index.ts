/** The iMessage channel plugin: a BlueBubbles server's API behind the clawbox channel interface (bluebubbles.ts). */
import { defineChannel } from '../../sdk.js';
import { BlueBubblesChannel } from './bluebubbles.js';

export default defineChannel({ channel: new BlueBubblesChannel() });
