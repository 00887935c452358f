export { Publisher } from './publisher.js';
export type { PublisherOptions } from './publisher.js';
export { Subscriber, StreamMessage } from './subscriber.js';
export type { LostRange, SubscriberOptions } from './subscriber.js';
export type { Retention } from './protocol.js';
