/** Chinese (Mandarin, simplified) for the intent fast path (data only; see language.ts). */
import type { IntentLanguage, VerbMeaning } from './language.js';

const v = (kinds: VerbMeaning['kinds'], property?: string): VerbMeaning => (property ? { kinds, property } : { kinds });
/** A comparative: a bare number after it is a change. */
const c = (kinds: VerbMeaning['kinds'], property?: string): VerbMeaning => ({ ...v(kinds, property), by: true });
const BRIGHTNESS = 'brightness';
const TARGET = 'target_temperature';

const names = (command: Record<string, unknown>): string[] =>
  Object.entries(command).map(([key, value]) => {
    if (key === 'state') {
      const s = String(value).toUpperCase();
      return ({ ON: '打开', OFF: '关闭', TOGGLE: '切换', OPEN: '打开', CLOSE: '关闭', STOP: '停止' } as Record<string, string>)[s] ?? `设为 ${s}`;
    }
    if (key === 'brightness') return `亮度调到 ${value}%`;
    if (key === 'position') return `开到 ${value}%`;
    if (key === 'target_temperature') return `温度设为 ${value}°C`;
    if (key === 'mode') return `模式设为 ${value}`;
    return `${key} 设为 ${value}`;
  });

export const chinese: IntentLanguage = {
  code: 'zh',
  spaced: false,
  numberless: true,
  rewrite: [
    [/百分之\s*([零〇一二两三四五六七八九十百\d.]+)/g, '$1%'],
    [/摄氏度/g, '°c'],
    [/华氏度/g, '°f'],
  ],
  plurals: [],
  numbers: {
    values: { 零: 0, 〇: 0, 一: 1, 二: 2, 两: 2, 三: 3, 四: 4, 五: 5, 六: 6, 七: 7, 八: 8, 九: 9 },
    multipliers: { 十: 10, 百: 100 },
  },
  fillers: [
    '请', '麻烦', '麻烦你', '帮我', '帮忙', '给我', '替我', '你', '把', '将', '一下', '吧', '呀', '啊', '了', '的', '谢谢', '谢了', '好吗', '好不好',
    '能', '能不能', '可以', '可不可以', '可以吗', '能否', '我想', '我要', '想', '要', '现在', '马上', '立刻', '嘿', '小爪', '家里', '里', '里面', '那个', '这个',
    '请问', '室内', '屋里', '房间里', '房间', '呢', '哦', '嗯', '就', '都', '一起', '统统', '全都', '个',
  ],
  conjunctions: ['和', '并', '并且', '然后', '再', '同时', '还有', '以及', '跟', '与', '接着'],
  negations: ['不', '不要', '别', '没', '没有', '勿', '禁止', '不用'],
  verbs: {
    开: v(['on', 'open']), 打开: v(['on', 'open']), 开启: v(['on', 'open']), 启动: v(['on']), 开开: v(['on', 'open']), 开了: v(['on', 'open']), 关了: v(['off', 'close']), 灭了: v(['off']), 点亮: v(['on']),
    关: v(['off', 'close']), 关掉: v(['off', 'close']), 关闭: v(['off', 'close']), 关上: v(['off', 'close']), 熄灭: v(['off']), 灭: v(['off']),
    切换: v(['toggle']), 拉开: v(['open']), 升起: v(['open', 'up']), 收起: v(['open']), 拉上: v(['close']), 放下: v(['close', 'down']),
    降下: v(['close', 'down']), 合上: v(['close']), 停: v(['stop']), 停止: v(['stop']), 暂停: v(['stop']),
    调: v(['set']), 设: v(['set']), 设置: v(['set']), 设为: v(['set']), 设成: v(['set']), 设定: v(['set']), 调成: v(['set']), 调到: v(['set']),
    调整: v(['set']), 改成: v(['set']), 改为: v(['set']), 切到: v(['set']), 切换到: v(['set']), 开到: v(['set']),
    调高: c(['up']), 升高: c(['up']), 提高: c(['up']), 增加: c(['up']), 加大: c(['up']), 高: c(['up']), 大: c(['up']), 多: { kinds: ['up'], by: true, again: 'same' },
    调低: c(['down']), 降低: c(['down']), 减少: { kinds: ['down'], by: true, again: 'reverse' }, 调小: c(['down']), 低: c(['down']), 小: c(['down']), 少: c(['down']),
    调亮: v(['up'], BRIGHTNESS), 亮: v(['up'], BRIGHTNESS), 更亮: c(['up'], BRIGHTNESS), 亮点: v(['up'], BRIGHTNESS),
    调暗: v(['down'], BRIGHTNESS), 暗: v(['down'], BRIGHTNESS), 更暗: c(['down'], BRIGHTNESS), 暗点: v(['down'], BRIGHTNESS),
    暖和: c(['up'], TARGET), 暖: v(['up'], TARGET), 热: v(['up'], TARGET), 升温: v(['up'], TARGET), 加热: v(['up'], TARGET),
    凉快: c(['down'], TARGET), 冷: v(['down'], TARGET), 凉: v(['down'], TARGET), 降温: v(['down'], TARGET),
  },
  states: { 开着: 'on', 开了: 'on', 亮着: 'on', 关着: 'off', 关了: 'off', 灭了: 'off', 打开了: 'open', 拉开了: 'open', 关上了: 'closed', 关闭了: 'closed' },
  requests: ['能', '可以', '能不能', '可不可以', '能否', '请', '帮我', '麻烦', '麻烦你', '把'],
  modes: { 制热: 'heat', 供暖: 'heat', 加热模式: 'heat', 制冷: 'cool', 自动: 'auto', 送风: 'fan_only', 除湿: 'dry', 节能: 'eco' },
  properties: {
    亮度: ['brightness'], 温度: ['target_temperature', 'current_temperature', 'temperature'], 室温: ['current_temperature', 'temperature'],
    目标温度: ['target_temperature'], 设定温度: ['target_temperature'], 湿度: ['humidity'], 位置: ['position'], 模式: ['mode'], 状态: ['state'],
  },
  adjectives: { 几度: ['current_temperature', 'temperature'], 多少度: ['current_temperature', 'temperature'], 多热: ['current_temperature', 'temperature'], 多冷: ['current_temperature', 'temperature'], 多亮: ['brightness'] },
  units: { '%': '%', 度: '°', '°': '°', '°c': '°c', '°f': '°f' },
  amounts: { 一点: 'small', 一点点: 'small', 一些: 'small', 点: 'small', 稍微: 'small', 有点: 'small', 些: 'small', 很多: 'large', 大大: 'large' },
  levels: { 一半: 50, 半: 50, 最亮: 100, 最大: 100, 全开: 100 },
  quantifiers: ['所有', '全部', '所有的', '一切', '每个', '每一个', '全屋', '全家', '整个'],
  pronouns: ['它', '它们', '那个设备', '这个设备'],
  questions: {
    吗: 'weak', 是否: 'strong', 是不是: 'strong', 多少: 'strong', 几度: 'strong', 什么: 'strong', 怎么样: 'strong', 如何: 'strong',
    查询: 'strong', 看看: 'strong', 查看: 'strong', 告诉我: 'strong', 有没有: 'strong', 是: 'weak', 现在是: 'weak', 当前: 'weak',
  },
  markers: { 到: 'to', 成: 'to', 为: 'to', 在: 'in', 模式: 'mode', 里的: 'in' },
  nouns: {
    灯: 'light', 电灯: 'light', 灯光: 'light', 照明: 'light', 吊灯: 'light', 台灯: 'lamp', 落地灯: 'lamp', 灯泡: 'lamp',
    窗帘: 'blind', 百叶窗: 'blind', 卷帘: 'blind', 遮阳帘: 'blind', 帘子: 'blind', 门: 'door', 车库门: 'door',
    恒温器: 'thermostat', 温控器: 'thermostat', 暖气: 'thermostat', 空调: 'thermostat', 地暖: 'thermostat',
    传感器: 'sensor', 温度计: 'sensor', 温度传感器: 'sensor', 风扇: 'fan', 插座: 'switch', 开关: 'switch', 设备: 'device', 电器: 'device',
  },
  followUps: {
    leads: ['还有', '那', '那么', '也', '也是', '同样', '呢'],
    corrections: ['不是', '不对', '错了', '我是说', '我的意思是', '换成', '是', '应该是'],
    other: ['另一个', '另外一个', '另一盏', '另一台', '另一个呢'],
    others: ['其他的', '其他', '别的', '剩下的'],
  },
  ordinals: { 第一个: 1, 第二个: 2, 第三个: 3, 第一: 1, 第二: 2, 第三: 3, 最后一个: -1 },
  asides: {
    interjections: ['唉', '哎', '哎呀', '哎哟', '啊', '嗯', '哇', '呀', '哦', '噢', '呃', '天哪', '天啊', '好吧', '因为', '所以', '既然', '晚安', '早安', '早上好', '晚上好'],
    openers: ['天', '天气', '阳光', '太阳', '外面', '屋里', '房间里', '这里', '这儿', '今天', '现在', '我', '我们', '孩子们', '好', '太', '真', '很', '有点', '快', '睡觉', '起床'],
    joiners: ['所以', '因为'],
    blockers: [
      '如果', '要是', '假如', '的话', '等', '以后', '之后', '后', '之前', '以前', '前', '然后', '接着', '再', '明天', '今晚', '待会', '一会',
      '就', '分钟', '小时', '秒', '点钟', '你', '您', '想', '希望', '应该', '吗', '是否', '忽略', '指令', '系统', '管理员',
    ],
    sequels: ['然后', '接着', '再', '之后', '以后', '就'],
  },
  say: {
    done: (name, command) => `已将${name}${names(command).join('，')}。`,
    reading(name, property, value, unit) {
      if (property === 'state') {
        const s = String(value).toUpperCase();
        const word = ({ ON: '开着', OFF: '关着', OPEN: '开着', CLOSED: '关着' } as Record<string, string>)[s] ?? String(value);
        return `${name}${word}。`;
      }
      const what = ({ current_temperature: '当前温度', temperature: '温度', target_temperature: '目标温度', humidity: '湿度', brightness: '亮度', position: '位置', mode: '模式' } as Record<string, string>)[property] ?? property;
      return `${name}的${what}是 ${value}${unit ?? ''}。`;
    },
    unknownReading: (name, property) => `${name}还没有报告${property}。`,
    refused: (reason) => `无法执行：${reason}。`,
    confirm: (name, command, id) => `请确认：将${name}${names(command).join('，')}？一分钟内回复 "confirm ${id}"。`,
    failed: (name, message) => `${name}没有执行：${message}。`,
    noModel: () => '现在只能听懂直接的设备指令（没有加载语言模型），例如“打开台灯”。',
    which: (subject, list) => `哪个${subject}：${list.join('还是')}？`,
  },
};
